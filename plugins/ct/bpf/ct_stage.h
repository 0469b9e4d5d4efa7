/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Body of the ct stage: ct.c wraps it in the tail-call program of slot ct,
 * mono.c runs it inline. */
#ifndef HOTPATH_CT_STAGE_H
#define HOTPATH_CT_STAGE_H

#include "lib/ct.h"

static __always_inline void *ct_map(__u8 proto)
{
	return proto == IPPROTO_TCP ? (void *)&ct4 : (void *)&ct_any4;
}

/* ct_done ends the ct stage. lb-revnat acts only on a packet with a
 * rev_nat_index, which ct is the last to set (abi.h, HP_SLOT_LB_REVNAT): the
 * packets of a flow nothing translated (every reply to a client that socket
 * LB translated, every flow to a backend or outside any service) pass over
 * that slot without a tail call. */
static __always_inline int ct_done(struct hp_ctx *c)
{
	if (!c->rev_nat_index)
		c->skip |= 1u << HP_SLOT_LB_REVNAT;
	return HP_SLOT_CT + 1;
}

/* ct_related matches an ICMP error to the entry of the packet it quotes,
 * without refreshing it and without creating one. An entry carries the flag
 * of the hook where its flow was first seen (OUT: entered the node at an
 * ingress hook; IN: originated by the node, first seen at egress), whichever
 * hook the error passes now, so both are tried. An error sent back to a
 * flow's originator (the usual case: port unreachable, fragmentation needed)
 * quotes the original direction and finds the entry under the quoted tuple;
 * one about a reply packet finds it under the reversed tuple. */
static __always_inline struct hp_ct_entry *ct_lookup2(void *map, struct hp_ct_tuple *key)
{
	struct hp_ct_entry *e;

	key->flags = HP_TUPLE_F_OUT;
	e = bpf_map_lookup_elem(map, key);
	if (e)
		return e;
	key->flags = HP_TUPLE_F_IN;
	return bpf_map_lookup_elem(map, key);
}

static __always_inline int ct_related(struct hp_ctx *c)
{
	struct hp_ct_tuple key = {
		.daddr = c->inner_daddr, .saddr = c->inner_saddr,
		.dport = c->inner_dport, .sport = c->inner_sport, .nexthdr = c->inner_proto,
	};
	void *map = ct_map(c->inner_proto);
	struct hp_ct_entry *e;

	e = ct_lookup2(map, &key);
	if (e) {
		c->inner_reply = 1;
	} else {
		key.daddr = c->inner_saddr;
		key.saddr = c->inner_daddr;
		key.dport = c->inner_sport;
		key.sport = c->inner_dport;
		e = ct_lookup2(map, &key);
		if (!e)
			return ct_done(c);
	}
	c->ct_status = HP_CT_RELATED;
	c->reason = HP_R_ICMP_RELATED;
	c->rev_nat_index = e->rev_nat_index;
	c->backend_id = e->backend_id;
	return ct_done(c);
}

/* What a TCP packet's SYN and ACK flags say about its direction. */
enum ct_syn_kind {
	CT_SYN_NONE = 0, /* no SYN (or not TCP): either direction */
	CT_SYN_OPEN = 1, /* SYN alone: opens a connection in its own direction */
	CT_SYN_ACK = 2,  /* SYN and ACK: answers a SYN, the reply direction */
};

/* ct_syn classifies a packet for the order of the lookups. A SYN alone
 * is never a reply: matching it to the entry of a connection the other way
 * round (a tuple reused in reverse) would count a new connection as an
 * answer, and let it past policy, which admits replies without a rule; the
 * kernel's conntrack holds such a SYN invalid too. It is also the first
 * packet of every connection, where each lookup reads a bucket no packet has
 * touched yet: the two reverse lookups it is spared are its dearest (~0.8 us
 * each on the lab VM, perf under a connection-rate load). A SYN-ACK is
 * looked up the reply way first, where its SYN left the entry. */
static __always_inline int ct_syn(const struct hp_ctx *c)
{
	__u8 f = c->tcp_flags & (HP_TCP_SYN | HP_TCP_ACK | HP_TCP_RST);

	if (c->proto != IPPROTO_TCP)
		return CT_SYN_NONE;
	if (f == HP_TCP_SYN)
		return CT_SYN_OPEN;
	return f == (HP_TCP_SYN | HP_TCP_ACK) ? CT_SYN_ACK : CT_SYN_NONE;
}

/* ct_lookup_reply finds the entry a packet answers: its flow was first seen
 * either where it entered the node (OUT; every forwarded flow, the common
 * case) or, at an ingress hook, leaving the node itself (IN). One pass per
 * node means a forwarded flow's reply finds the entry its original direction
 * created at another device's ingress hook. */
static __always_inline struct hp_ct_entry *ct_lookup_reply(void *map, struct hp_ct_tuple *key, const struct hp_ctx *c)
{
	struct hp_ct_entry *e;

	ct_tuple_reverse(key, c, HP_TUPLE_F_OUT);
	e = bpf_map_lookup_elem(map, key);
	if (!e && c->dir == HP_DIR_INGRESS) {
		key->flags = HP_TUPLE_F_IN;
		e = bpf_map_lookup_elem(map, key);
	}
	return e;
}

static __always_inline int ct_body(struct __sk_buff *skb, struct hp_ctx *c)
{
	struct hp_ct_tuple key;
	struct hp_ct_entry *e;
	__u8 flag;
	int reply, syn;
	__u32 now;
	void *map;

	/* Untracked protocols have no ports; ICMP errors belong to the flow
	 * they quote. One flag test for everything else. */
	if (!(c->parse & HP_P_L4)) {
		if (c->parse & HP_P_ICMP_ERR)
			return ct_related(c);
		return ct_done(c);
	}

	map = ct_map(c->proto);
	flag = c->dir == HP_DIR_INGRESS ? HP_TUPLE_F_OUT : HP_TUPLE_F_IN;
	syn = ct_syn(c);
	/* A SYN-ACK answers a SYN: the reply direction first. */
	e = syn == CT_SYN_ACK ? ct_lookup_reply(map, &key, c) : 0;
	reply = !!e;
	if (!e) {
		ct_tuple_fill(&key, c, flag);
		e = bpf_map_lookup_elem(map, &key);
		/* The reply way unless already tried, or the packet is a SYN,
		 * which is looked up as an original only (see ct_syn). */
		if (!e && syn == CT_SYN_NONE) {
			e = ct_lookup_reply(map, &key, c);
			reply = 1;
		}
	}
	now = hp_ctx_now(c);
	if (e) {
		/* A tuple reused through another service (a client port reused
		 * for a new VIP landing on the same backend) must reverse-NAT to
		 * the new VIP: in the original direction, the lb stage's
		 * translation of this packet wins over the entry's. */
		if (!reply && c->svc_id && (e->rev_nat_index != c->rev_nat_index ||
					    e->backend_id != c->backend_id)) {
			e->rev_nat_index = c->rev_nat_index;
			e->backend_id = c->backend_id;
		} else if (!reply && !c->svc_id && e->rev_nat_index && c->dir == HP_DIR_INGRESS) {
			/* The tuple reused without a service, where lb ran: a
			 * connection straight to the backend (or one socket LB
			 * translated) must not be reverse-NATed to the old VIP. */
			e->rev_nat_index = 0;
			e->backend_id = 0;
		}
		ct_refresh(e, c, reply, 0, now);
		c->ct_status = reply ? HP_CT_REPLY : HP_CT_ESTABLISHED;
		c->rev_nat_index = e->rev_nat_index;
		if (!c->backend_id)
			c->backend_id = e->backend_id;
		return ct_done(c);
	}

	/* An RST opens nothing: tracking one would only leave a dead entry
	 * behind (the kernel's conntrack refuses it too). This also keeps the
	 * RSTs lb sends for services without backends from filling ct4. */
	if (c->proto == IPPROTO_TCP && (c->tcp_flags & HP_TCP_RST))
		return ct_done(c);
	ct_tuple_fill(&key, c, flag);
	c->ct_status = HP_CT_NEW;
	if (ct_create(map, &key, c, 0, now) < 0) {
		/* Another CPU may have created it first: refresh that one. */
		e = bpf_map_lookup_elem(map, &key);
		if (e) {
			ct_refresh(e, c, 0, 0, now);
			c->ct_status = HP_CT_ESTABLISHED;
		} else {
			c->reason = HP_R_CT_CREATE_FAILED;
		}
	}
	return ct_done(c);
}

#endif /* HOTPATH_CT_STAGE_H */
