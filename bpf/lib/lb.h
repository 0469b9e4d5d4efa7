/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Load balancer helpers, shared by the lb plugin's stages and by any vendor
 * plugin that supplies the lb-select slot.
 *
 * Byte order: every address and port in the lb4_* maps is in network byte
 * order, as in hp_ctx, so the datapath compares and rewrites them without
 * conversion.
 *
 * Contract between the lb stages (and a vendor lb-select):
 *   lb        sets c->svc_id and c->rev_nat_index for a packet to a service.
 *             If the flow's CT_SERVICE entry names a live backend, it sets
 *             c->backend_id and LB_SF_RESOLVED, rewrites the destination
 *             itself and jumps past lb-select and lb-dnat (an established
 *             flow costs one stage); otherwise it sets LB_SF_SELECT and
 *             copies the service into scratch (struct lb_scratch.svc). It
 *             marks lb-revnat skipped (hp_ctx.skip) for a packet to a service.
 *   lb-select runs its algorithm only when LB_SF_SELECT is set and leaves
 *             the choice in c->backend_id (0: none, lb-dnat rejects the
 *             packet with lb_reject, as kube-proxy does). It must not write
 *             scratch.
 *   lb-dnat   records the choice (CT_SERVICE entry, affinity) and rewrites
 *             the destination; the ct stage then tracks the translated tuple.
 */
#ifndef HOTPATH_LB_H
#define HOTPATH_LB_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <stddef.h>
#include "ct.h"

/* c->svc_flags bits while the lb stages run. */
enum lb_svc_flag {
	LB_SF_SELECT = 0x01,   /* no live CT_SERVICE entry: lb-select must choose */
	LB_SF_RESOLVED = 0x02, /* lb translated the flow to its live backend */
	LB_SF_STALE = 0x04,    /* a CT_SERVICE entry exists but its backend is gone */
	LB_SF_AFFINITY = 0x08, /* the service has ClientIP session affinity */
	LB_SF_AFF_HIT = 0x10,  /* lb-select took the backend from the affinity entry */
};

/* Layout of hp_ctx.scratch between the lb stages. */
struct lb_scratch {
	union {
		struct hp_lb4_service svc; /* LB_SF_SELECT */
		struct {
			__u32 backend_id;
			__u32 address;
			__u16 port;
			__u16 pad;
		} be; /* LB_SF_RESOLVED */
	};
};
_Static_assert(sizeof(struct lb_scratch) <= sizeof(((struct hp_ctx *)0)->scratch),
	       "lb scratch does not fit hp_ctx.scratch");

/* Seed of the packet hash; the lb plugin sets it at load time to the seed
 * its Maglev tables are built with (config maglev_seed). */
volatile const __u32 lb_hash_seed = 0;

static __always_inline struct lb_scratch *lb_scratch(struct hp_ctx *c)
{
	return (struct lb_scratch *)c->scratch;
}

static __always_inline void *lb_ct_map(__u8 proto)
{
	return proto == IPPROTO_TCP ? (void *)&ct4 : (void *)&ct_any4;
}

/* The flow's CT_SERVICE key: the tuple as the client sent it, to the VIP. */
static __always_inline void lb_svc_tuple(struct hp_ct_tuple *t, const struct hp_ctx *c)
{
	ct_tuple_fill(t, c, HP_TUPLE_F_SERVICE);
}

static __always_inline __u32 lb_murmur_mix(__u32 h, __u32 k)
{
	k *= 0xcc9e2d51;
	k = (k << 15) | (k >> 17);
	k *= 0x1b873593;
	h ^= k;
	h = (h << 13) | (h >> 19);
	return h * 5 + 0xe6546b64;
}

/* lb_hash is maglev.HashTuple: MurmurHash3_x86_32 over host-order
 * saddr, daddr, sport<<16|dport, proto. A Go test pins the two together. */
static __always_inline __u32 lb_hash(const struct hp_ctx *c, __u32 seed)
{
	__u32 h = seed;

	h = lb_murmur_mix(h, bpf_ntohl(c->saddr));
	h = lb_murmur_mix(h, bpf_ntohl(c->daddr));
	h = lb_murmur_mix(h, ((__u32)bpf_ntohs(c->sport) << 16) | bpf_ntohs(c->dport));
	h = lb_murmur_mix(h, c->proto);
	h ^= 16;
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

/* lb_pick_random: weighted by construction, since the control plane gives
 * each backend a number of slots proportional to its weight. */
static __always_inline __u32 lb_pick_random(const struct hp_lb4_service *svc)
{
	struct hp_lb4_slot_key k = {.svc_id = svc->svc_id};
	__u32 *id;

	if (!svc->count)
		return 0;
	k.slot = bpf_get_prandom_u32() % svc->count;
	id = bpf_map_lookup_elem(&lb4_slots, &k);
	return id ? *id : 0;
}

/* lb_pick_maglev returns 0 when the service has no table (yet, or any more:
 * the algorithm was switched under this packet); callers fall back. svc is
 * one read of the service's value, so offset and M belong to one table: a
 * table is rewritten into unused chunks and published by the value update,
 * and its old chunks are reused only after an RCU grace period. */
static __always_inline __u32 lb_pick_maglev(const struct hp_ctx *c, const struct hp_lb4_service *svc)
{
	struct hp_maglev_chunk *chunk;
	__u32 idx, key;

	if (!svc->maglev_offset || !svc->maglev_size)
		return 0;
	idx = lb_hash(c, lb_hash_seed) % svc->maglev_size;
	key = svc->maglev_offset + idx / HP_MAGLEV_CHUNK;
	chunk = bpf_map_lookup_elem(&lb4_maglev, &key);
	if (!chunk)
		return 0;
	return chunk->backend[idx & (HP_MAGLEV_CHUNK - 1)];
}

/* lb_pick_affinity returns the client's recent backend if it still exists
 * and refreshes the entry in place. */
static __always_inline __u32 lb_pick_affinity(const struct hp_ctx *c, const struct hp_lb4_service *svc, __u32 now)
{
	struct hp_lb4_affinity_key k = {.client = c->saddr, .svc_id = svc->svc_id};
	struct hp_lb4_affinity *a;
	__u32 id;

	a = bpf_map_lookup_elem(&lb4_affinity, &k);
	if (!a || now - a->last_used >= svc->affinity_timeout)
		return 0;
	id = a->backend_id;
	if (!bpf_map_lookup_elem(&lb4_backends, &id))
		return 0;
	if (a->last_used != now)
		a->last_used = now;
	return id;
}

/* lb_select_builtin is the lb plugin's selection, exported so that a vendor
 * lb-select can handle its own services and hand the rest back here. */
static __always_inline __u32 lb_select_builtin(struct hp_ctx *c, const struct hp_lb4_service *svc, __u32 now)
{
	__u32 id = 0;

	if (!svc->count)
		return 0;
	if (c->svc_flags & LB_SF_AFFINITY) {
		id = lb_pick_affinity(c, svc, now);
		if (id) {
			c->svc_flags |= LB_SF_AFF_HIT;
			return id;
		}
	}
	if (svc->algorithm == HP_LB_ALG_MAGLEV)
		id = lb_pick_maglev(c, svc);
	if (!id)
		id = lb_pick_random(svc);
	return id;
}

static __always_inline __u32 lb_csum_word(__u32 acc, __u16 old, __u16 new)
{
	return acc + (__u16)~old + new;
}

static __always_inline __u32 lb_csum_addr(__u32 acc, __u32 old, __u32 new)
{
	acc = lb_csum_word(acc, old & 0xffff, new & 0xffff);
	return lb_csum_word(acc, old >> 16, new >> 16);
}

static __always_inline __u16 lb_csum_fold(__s64 sum)
{
	__u32 s = (__u32)sum;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

/* lb_set_ip_addr writes the destination (dst) or source address of the IP
 * header and its checksum. That checksum covers the header alone, so it is
 * updated in place whatever the skb's checksum state, where the header is in
 * the linear data (two helper calls saved), through the helpers otherwise. */
static __always_inline int lb_set_ip_addr(struct __sk_buff *skb, const struct hp_ctx *c, int dst,
					  __u32 old, __u32 addr)
{
	struct iphdr *ip = hp_ip_hdr(skb, c->l3_off);

	if (ip) {
		ip->check = lb_csum_fold(lb_csum_addr((__u16)~ip->check, old, addr));
		if (dst)
			ip->daddr = addr;
		else
			ip->saddr = addr;
		return 0;
	}
	if (bpf_l3_csum_replace(skb, c->l3_off + offsetof(struct iphdr, check), old, addr, 4) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, c->l3_off + (dst ? offsetof(struct iphdr, daddr) : offsetof(struct iphdr, saddr)),
				   &addr, 4, 0);
}

/* lb_rewrite replaces the destination (dst) or source address and port of a
 * TCP or UDP packet with incremental checksum updates. A UDP checksum of 0
 * (none) stays 0; a computed 0 is written as 0xffff. A later fragment has no
 * L4 header: only its address changes (the first fragment's L4 checksum
 * covers the whole datagram and was updated with it). The L4 checksum goes
 * through the helper, which alone knows the skb's checksum state (a
 * CHECKSUM_PARTIAL one holds only the pseudo header's sum); the bytes
 * themselves are written by hp_store. */
static __always_inline int lb_rewrite(struct __sk_buff *skb, const struct hp_ctx *c, int dst,
				      __u32 addr, __u16 port)
{
	__u32 old_addr = dst ? c->daddr : c->saddr;
	__u16 old_port = dst ? c->dport : c->sport;
	__u32 port_off = c->l4_off + (dst ? 2 : 0);
	__u32 csum_off = c->l4_off + (c->proto == IPPROTO_TCP ? 16 : 6);
	__u64 mangled = c->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	int l4 = !(c->parse & HP_P_FRAG_NOHDR);

	if (old_addr != addr) {
		if ((l4 && bpf_l4_csum_replace(skb, csum_off, old_addr, addr, mangled | BPF_F_PSEUDO_HDR | 4) < 0) ||
		    lb_set_ip_addr(skb, c, dst, old_addr, addr) < 0)
			return -1;
	}
	if (old_port != port && l4) {
		if (bpf_l4_csum_replace(skb, csum_off, old_port, port, mangled | 2) < 0 ||
		    hp_store(skb, port_off, &port, 2) < 0)
			return -1;
	}
	return 0;
}

/* lb_icmp_rewrite translates an ICMP error about a TCP or UDP flow: the
 * quoted packet's source (src) or destination address and port become addr
 * and port, and the error's own destination (src) or source too when it was
 * the same address. Every checksum follows: the quoted IP header's, the
 * quoted L4 one where the quote holds it (only 8 bytes of L4 are guaranteed;
 * a quoted UDP checksum of 0 stays 0), the ICMP one over all of that (no
 * pseudo header: a difference of the changed words) and the outer IP
 * header's. Each change is compensated within the span its checksum covers,
 * so a CHECKSUM_COMPLETE skb->csum stays right. */
static __always_inline int lb_icmp_rewrite(struct __sk_buff *skb, struct hp_ctx *c, int src, __u32 addr, __u16 port)
{
	__u32 old = src ? c->inner_saddr : c->inner_daddr;
	__u16 old_port = src ? c->inner_sport : c->inner_dport;
	__u32 ipc_off = c->inner_l3_off + offsetof(struct iphdr, check);
	__u32 addr_off = c->inner_l3_off + (src ? offsetof(struct iphdr, saddr) : offsetof(struct iphdr, daddr));
	__u32 l4c_off = c->inner_l4_off + (c->inner_proto == IPPROTO_TCP ? 16 : 6);
	__u32 outer = src ? c->daddr : c->saddr, acc = 0;
	__u16 oc, nc;

	if (bpf_skb_load_bytes(skb, ipc_off, &oc, 2) < 0 ||
	    bpf_l3_csum_replace(skb, ipc_off, old, addr, 4) < 0 ||
	    bpf_skb_store_bytes(skb, addr_off, &addr, 4, 0) < 0 ||
	    bpf_skb_load_bytes(skb, ipc_off, &nc, 2) < 0)
		return -1;
	acc = lb_csum_addr(acc, old, addr);
	acc = lb_csum_word(acc, oc, nc);
	if (bpf_skb_load_bytes(skb, l4c_off, &oc, 2) == 0 && (oc || c->inner_proto == IPPROTO_TCP)) {
		if (bpf_l3_csum_replace(skb, l4c_off, old, addr, 4) < 0 ||
		    bpf_l3_csum_replace(skb, l4c_off, old_port, port, 2) < 0 ||
		    bpf_skb_load_bytes(skb, l4c_off, &nc, 2) < 0)
			return -1;
		acc = lb_csum_word(acc, oc, nc);
	}
	if (bpf_skb_store_bytes(skb, c->inner_l4_off + (src ? 0 : 2), &port, 2, 0) < 0)
		return -1;
	acc = lb_csum_word(acc, old_port, port);
	/* size 0: acc is a checksum difference */
	if (bpf_l3_csum_replace(skb, c->l4_off + 2, 0, acc, 0) < 0)
		return -1;
	if (outer == old) {
		if (bpf_l3_csum_replace(skb, c->l3_off + offsetof(struct iphdr, check), old, addr, 4) < 0 ||
		    bpf_skb_store_bytes(skb, c->l3_off + (src ? offsetof(struct iphdr, daddr) : offsetof(struct iphdr, saddr)),
					&addr, 4, 0) < 0)
			return -1;
		if (src)
			c->daddr = addr;
		else
			c->saddr = addr;
	}
	if (src) {
		c->inner_saddr = addr;
		c->inner_sport = port;
	} else {
		c->inner_daddr = addr;
		c->inner_dport = port;
	}
	return 0;
}

struct lb_pseudo {
	__u32 saddr;
	__u32 daddr;
	__u8 zero;
	__u8 proto;
	__u16 len;
};

/* lb_reply_l3 writes the Ethernet and IPv4 headers of a packet sent back to
 * the client from the VIP, which is what a client sees from kube-proxy's
 * REJECT. */
static __always_inline int lb_reply_l3(struct __sk_buff *skb, const struct hp_ctx *c, __u8 proto, __u16 tot)
{
	struct ethhdr eth;
	struct iphdr ip = {};
	__u8 mac[ETH_ALEN];

	if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)) < 0)
		return -1;
	__builtin_memcpy(mac, eth.h_source, ETH_ALEN);
	__builtin_memcpy(eth.h_source, eth.h_dest, ETH_ALEN);
	__builtin_memcpy(eth.h_dest, mac, ETH_ALEN);
	eth.h_proto = bpf_htons(ETH_P_IP);
	ip.version = 4;
	ip.ihl = 5;
	ip.tot_len = bpf_htons(tot);
	ip.ttl = 64;
	ip.protocol = proto;
	ip.saddr = c->daddr;
	ip.daddr = c->saddr;
	ip.check = lb_csum_fold(bpf_csum_diff(0, 0, (__be32 *)&ip, sizeof(ip), 0));
	if (bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_HLEN, &ip, sizeof(ip), 0) < 0)
		return -1;
	return 0;
}

/* lb_reject_tcp turns the packet into the RST that answers it (RFC 793:
 * the acknowledgment it carried becomes our sequence number, or we
 * acknowledge what it occupied). */
static __always_inline int lb_reject_tcp(struct __sk_buff *skb, const struct hp_ctx *c)
{
	struct lb_pseudo ph = {.saddr = c->daddr, .daddr = c->saddr, .proto = IPPROTO_TCP,
			       .len = bpf_htons(sizeof(struct tcphdr))};
	struct tcphdr in, th = {};
	struct iphdr ip;
	__u32 plen;
	__s64 sum;

	if (bpf_skb_load_bytes(skb, c->l3_off, &ip, sizeof(ip)) < 0 ||
	    bpf_skb_load_bytes(skb, c->l4_off, &in, sizeof(in)) < 0)
		return -1;
	plen = bpf_ntohs(ip.tot_len) - (c->l4_off - c->l3_off) - in.doff * 4;
	th.source = in.dest;
	th.dest = in.source;
	th.doff = 5;
	th.rst = 1;
	if (in.ack) {
		th.seq = in.ack_seq;
	} else {
		th.ack = 1;
		th.ack_seq = bpf_htonl(bpf_ntohl(in.seq) + plen + in.syn + in.fin);
	}
	sum = bpf_csum_diff(0, 0, (__be32 *)&ph, sizeof(ph), 0);
	sum = bpf_csum_diff(0, 0, (__be32 *)&th, sizeof(th), (__wsum)sum);
	th.check = lb_csum_fold(sum);
	if (bpf_skb_change_tail(skb, ETH_HLEN + sizeof(ip) + sizeof(th), 0) < 0 ||
	    lb_reply_l3(skb, c, IPPROTO_TCP, sizeof(ip) + sizeof(th)) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + sizeof(ip), &th, sizeof(th), 0) < 0)
		return -1;
	return 0;
}

/* lb_reject_udp turns the packet into an ICMP port unreachable quoting its
 * IP header and first 8 bytes of UDP, all a socket needs to find the flow. */
static __always_inline int lb_reject_udp(struct __sk_buff *skb, const struct hp_ctx *c)
{
	struct hp_icmphdr ih = {.type = HP_ICMP_DEST_UNREACH, .code = HP_ICMP_PORT_UNREACH};
	__u32 quote[17];
	__u32 qlen;
	__s64 sum;

	qlen = (c->l4_off - c->l3_off) + 8;
	if (qlen < 28 || qlen > sizeof(quote))
		return -1;
	if (bpf_skb_change_tail(skb, ETH_HLEN + qlen, 0) < 0 ||
	    bpf_skb_adjust_room(skb, sizeof(struct iphdr) + sizeof(ih), BPF_ADJ_ROOM_MAC, 0) < 0 ||
	    bpf_skb_load_bytes(skb, ETH_HLEN + sizeof(struct iphdr) + sizeof(ih), quote, qlen) < 0)
		return -1;
	sum = bpf_csum_diff(0, 0, (__be32 *)&ih, sizeof(ih), 0);
	sum = bpf_csum_diff(0, 0, quote, qlen, (__wsum)sum);
	ih.checksum = lb_csum_fold(sum);
	if (lb_reply_l3(skb, c, IPPROTO_ICMP, sizeof(struct iphdr) + sizeof(ih) + qlen) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + sizeof(struct iphdr), &ih, sizeof(ih), 0) < 0)
		return -1;
	return 0;
}

/* lb_reject answers a packet to a service without backends the way
 * kube-proxy's REJECT does, so the client fails at once instead of timing
 * out: TCP with an RST, UDP with an ICMP port unreachable, both from the VIP
 * and sent back out of the device the packet came in by. What must not be
 * answered (an RST, a later fragment) or cannot be is dropped. */
static __always_inline int lb_reject(struct __sk_buff *skb, struct hp_ctx *c)
{
	int err;

	if (c->parse & HP_P_FRAG_NOHDR)
		return hp_stop(c, HP_R_NO_BACKEND);
	if (c->proto == IPPROTO_TCP) {
		if (c->tcp_flags & HP_TCP_RST)
			return hp_stop(c, HP_R_NO_BACKEND);
		err = lb_reject_tcp(skb, c);
	} else {
		err = lb_reject_udp(skb, c);
	}
	if (err < 0)
		return hp_stop(c, HP_R_NO_BACKEND);
	c->verdict = HP_V_REDIRECT;
	c->redirect_ifindex = c->ifindex;
	c->reason = HP_R_REJECT;
	return HP_STOP;
}

#endif /* HOTPATH_LB_H */
