/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Bodies of the lb stages. Each returns the first slot to continue from, or
 * HP_STOP after hp_stop(); lb.c wraps each in its own tail-call program and
 * mono.c runs them back to back in one program. */
#ifndef HOTPATH_LB_STAGES_H
#define HOTPATH_LB_STAGES_H

#include "lib/lb.h"

static __always_inline int lb_l4(const struct hp_ctx *c)
{
	return (c->parse & HP_P_L4) && (c->proto == IPPROTO_TCP || c->proto == IPPROTO_UDP);
}

/* lb_inline_select: lb supplies lb-select itself (select "builtin"), so the
 * lb stage chooses a new flow's backend and translates it too, and the flow
 * passes lb-select and lb-dnat without a tail call each, as an established
 * flow does. The lb plugin sets it at load time; it stays 0 (the three
 * stages run apart) where another plugin's lb-select holds the slot, whose
 * choice this stage must not make for it, and in the monolithic build. */
volatile const __u32 lb_inline_select = 0;

/* lb_dnat_related sends an ICMP error a client addresses to a VIP about a
 * reply it got from it (port unreachable after its socket closed, or
 * fragmentation needed from a router on the client's side) to the backend
 * that sent the reply: the flow's CT_SERVICE entry names it. The quoted
 * packet's source and the error's destination become the backend's. */
static __always_inline int lb_dnat_related(struct __sk_buff *skb, struct hp_ctx *c)
{
	struct hp_lb4_key key = {.address = c->inner_saddr, .dport = c->inner_sport, .proto = c->inner_proto};
	struct hp_ct_tuple t = {
		.daddr = c->inner_saddr, .saddr = c->inner_daddr, .dport = c->inner_sport,
		.sport = c->inner_dport, .nexthdr = c->inner_proto, .flags = HP_TUPLE_F_SERVICE,
	};
	struct hp_lb4_backend *be;
	struct hp_ct_entry *e;
	__u32 id;

	if (c->inner_proto != IPPROTO_TCP && c->inner_proto != IPPROTO_UDP)
		return HP_SLOT_LB_DNAT + 1;
	if (!bpf_map_lookup_elem(&lb4_services, &key))
		return HP_SLOT_LB_DNAT + 1;
	e = bpf_map_lookup_elem(lb_ct_map(c->inner_proto), &t);
	if (!e)
		return HP_SLOT_LB_DNAT + 1;
	id = e->backend_id;
	be = bpf_map_lookup_elem(&lb4_backends, &id);
	if (!be)
		return HP_SLOT_LB_DNAT + 1;
	if (lb_icmp_rewrite(skb, c, 1, be->address, be->port) < 0)
		return hp_stop(c, HP_R_STAGE_DROP);
	return HP_SLOT_LB_DNAT + 1;
}

/* lb_to_backend translates the packet to backend be, where established and
 * new service flows both end, and passes over the rest of lb's slots. */
static __always_inline int lb_to_backend(struct __sk_buff *skb, struct hp_ctx *c, const struct hp_lb4_backend *be)
{
	__u32 addr = be->address;
	__u16 port = be->port;

	if (lb_rewrite(skb, c, 1, addr, port) < 0)
		return hp_stop(c, HP_R_STAGE_DROP);
	c->daddr = addr;
	c->dport = port;
	return HP_SLOT_LB_DNAT + 1;
}

static __always_inline int lb_select_body(struct __sk_buff *skb, struct hp_ctx *c)
{

	if (!(c->svc_flags & LB_SF_SELECT) || c->backend_id)
		return HP_SLOT_LB_SELECT + 1;
	c->backend_id = lb_select_builtin(c, &lb_scratch(c)->svc, hp_ctx_now(c));
	if (!c->backend_id)
		return lb_reject(skb, c);
	return HP_SLOT_LB_SELECT + 1;
}

/* lb_record leaves the flow's choice in its CT_SERVICE entry. When another
 * CPU recorded a live backend for the same flow first, its choice wins, so
 * that both packets go to one backend. Returns the backend to use. */
static __always_inline struct hp_lb4_backend *lb_record(struct hp_ctx *c, struct hp_lb4_backend *be, __u32 now)
{
	void *map = lb_ct_map(c->proto);
	struct hp_lb4_backend *won;
	struct hp_ct_tuple t;
	struct hp_ct_entry *e;
	__u32 id;

	lb_svc_tuple(&t, c);
	if (!(c->svc_flags & LB_SF_STALE) && ct_create(map, &t, c, 1, now) == 0)
		return be;
	e = bpf_map_lookup_elem(map, &t);
	if (!e) {
		/* Stale entry expired meanwhile (or the map refused): best effort. */
		ct_create(map, &t, c, 1, now);
		return be;
	}
	/* A live backend in the entry means another CPU chose first (for a
	 * stale entry: re-chose first); a dead one is replaced by ours. */
	id = e->backend_id;
	if (id != c->backend_id) {
		won = bpf_map_lookup_elem(&lb4_backends, &id);
		if (won) {
			c->backend_id = id;
			be = won;
		} else {
			e->backend_id = c->backend_id;
		}
	}
	ct_refresh(e, c, 0, 1, now);
	return be;
}

static __always_inline int lb_dnat_body(struct __sk_buff *skb, struct hp_ctx *c)
{
	struct hp_lb4_affinity_key ak;
	struct hp_lb4_affinity av;
	struct hp_lb4_backend *be;
	__u32 id, now;

	/* Established flows were translated by lb already (LB_SF_RESOLVED). */
	if (!c->svc_id || !(c->svc_flags & LB_SF_SELECT))
		return HP_SLOT_LB_DNAT + 1;
	id = c->backend_id;
	if (!id)
		return lb_reject(skb, c);
	be = bpf_map_lookup_elem(&lb4_backends, &id);
	if (!be)
		return hp_stop(c, HP_R_NO_BACKEND);
	now = hp_ctx_now(c);
	be = lb_record(c, be, now);
	if ((c->svc_flags & (LB_SF_AFFINITY | LB_SF_AFF_HIT)) == LB_SF_AFFINITY) {
		ak.client = c->saddr;
		ak.svc_id = c->svc_id;
		av.backend_id = c->backend_id;
		av.last_used = now;
		bpf_map_update_elem(&lb4_affinity, &ak, &av, BPF_ANY);
	}
	return lb_to_backend(skb, c, be);
}

static __always_inline int lb_body(struct __sk_buff *skb, struct hp_ctx *c)
{
	struct hp_lb4_key key = {};
	struct hp_lb4_service *svc;
	struct hp_lb4_backend *be;
	struct hp_ct_tuple t;
	struct hp_ct_entry *e;
	struct lb_scratch *s;
	__u32 id;

	/* Packets that are not to a service, and established flows, have
	 * nothing to do in lb-select and lb-dnat: an established flow is
	 * translated here, so that it costs one stage, not three. Jumping over
	 * those slots saves a tail call and a stage entry each. With
	 * lb_inline_select a new flow is chosen for and translated here too. */
	if (c->dir != HP_DIR_INGRESS)
		return HP_SLOT_LB_DNAT + 1;
	if (!lb_l4(c)) {
		if (c->parse & HP_P_ICMP_ERR)
			return lb_dnat_related(skb, c);
		return HP_SLOT_LB_DNAT + 1;
	}

	key.address = c->daddr;
	key.dport = c->dport;
	key.proto = c->proto;
	svc = bpf_map_lookup_elem(&lb4_services, &key);
	if (!svc)
		return HP_SLOT_LB_DNAT + 1;
	/* A packet to a service is never a reply to reverse-translate. */
	c->skip |= 1u << HP_SLOT_LB_REVNAT;
	c->svc_id = svc->svc_id;
	c->rev_nat_index = svc->rev_nat_index;
	c->svc_flags = svc->flags & HP_LB_F_AFFINITY ? LB_SF_AFFINITY : 0;
	s = lb_scratch(c);

	lb_svc_tuple(&t, c);
	e = bpf_map_lookup_elem(lb_ct_map(c->proto), &t);
	if (e) {
		/* The backend lookup doubles as the existence check. */
		id = e->backend_id;
		be = bpf_map_lookup_elem(&lb4_backends, &id);
		if (be) {
			ct_refresh(e, c, 0, 1, hp_ctx_now(c));
			c->backend_id = id;
			c->svc_flags |= LB_SF_RESOLVED;
			return lb_to_backend(skb, c, be);
		}
		/* The backend was removed: choose again, keep the entry. */
		c->svc_flags |= LB_SF_STALE;
	}
	c->svc_flags |= LB_SF_SELECT;
	__builtin_memcpy(&s->svc, svc, sizeof(s->svc));
	if (!lb_inline_select)
		return HP_SLOT_LB + 1;
	if (lb_select_body(skb, c) < 0)
		return HP_STOP;
	return lb_dnat_body(skb, c);
}

/* lb_revnat_related turns an ICMP error about a translated flow, on its way
 * back to the client, into one about the service: the quoted packet's
 * destination (the backend) becomes the VIP again, and so does the error's
 * source when the backend itself sent it; an error from a router or from this
 * node's own stack (fragmentation needed on the way to the backend) keeps its
 * source. */
static __always_inline int lb_revnat_related(struct __sk_buff *skb, struct hp_ctx *c)
{
	__u16 idx = c->rev_nat_index;
	struct hp_lb4_revnat *r;

	if (!c->inner_reply || !idx || (c->inner_proto != IPPROTO_TCP && c->inner_proto != IPPROTO_UDP))
		return HP_SLOT_LB_REVNAT + 1;
	r = bpf_map_lookup_elem(&lb4_revnat, &idx);
	if (!r)
		return HP_SLOT_LB_REVNAT + 1;
	if (lb_icmp_rewrite(skb, c, 0, r->address, r->port) < 0)
		return hp_stop(c, HP_R_STAGE_DROP);
	return HP_SLOT_LB_REVNAT + 1;
}

static __always_inline int lb_revnat_body(struct __sk_buff *skb, struct hp_ctx *c)
{
	struct hp_lb4_revnat *r;
	__u16 idx;

	if (c->ct_status != HP_CT_REPLY) {
		if (c->ct_status == HP_CT_RELATED)
			return lb_revnat_related(skb, c);
		return HP_SLOT_LB_REVNAT + 1;
	}
	if (!c->rev_nat_index || !lb_l4(c))
		return HP_SLOT_LB_REVNAT + 1;
	idx = c->rev_nat_index;
	r = bpf_map_lookup_elem(&lb4_revnat, &idx);
	if (!r)
		return HP_SLOT_LB_REVNAT + 1;
	if (lb_rewrite(skb, c, 0, r->address, r->port) < 0)
		return hp_stop(c, HP_R_STAGE_DROP);
	c->saddr = r->address;
	c->sport = r->port;
	return HP_SLOT_LB_REVNAT + 1;
}

#endif /* HOTPATH_LB_STAGES_H */
