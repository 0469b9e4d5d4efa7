/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Route lookups for stages that send a packet on themselves instead of
 * handing it to the kernel's forwarding path (the forward stage, masquerade).
 * Such a stage owes the packet what ip_forward would have done: a TTL
 * check and decrement, an MTU check. */
#ifndef HOTPATH_FIB_H
#define HOTPATH_FIB_H

#include <stddef.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_endian.h>
#include "pipeline.h"
#include "pkt.h"

#define HP_AF_INET 2

/* hp_fwd_len is the length the next hop's MTU is checked against: the IP
 * packet, or for a GSO packet one segment of it (the kernel's
 * skb_gso_validate_network_len). */
static __always_inline __u16 hp_fwd_len(struct __sk_buff *skb, const struct hp_ctx *c, const struct iphdr *ip)
{
	__u32 l4 = 8;
	__u8 doff;

	if (!skb->gso_size)
		return bpf_ntohs(ip->tot_len);
	if (ip->protocol == IPPROTO_TCP) {
		if (hp_load(skb, c->l4_off + 12, &doff, 1) < 0)
			return 0xffff;
		l4 = (doff >> 4) * 4;
	}
	return (c->l4_off - c->l3_off) + l4 + skb->gso_size;
}

/* hp_fib_route asks the kernel's FIB where it would forward the packet whose
 * IPv4 header is ip, entering at c->ifindex. The packet's length is checked
 * against the MTU of the route found (route metrics and learnt path MTUs
 * included, as ip_forward does): one that does not fit comes back as
 * BPF_FIB_LKUP_RET_FRAG_NEEDED and is left to the kernel, which fragments
 * it or answers with ICMP fragmentation needed. */
static __always_inline int hp_fib_route(struct __sk_buff *skb, const struct hp_ctx *c,
					const struct iphdr *ip, struct bpf_fib_lookup *p, __u32 flags)
{
	__builtin_memset(p, 0, sizeof(*p));
	p->family = HP_AF_INET;
	p->tos = ip->tos;
	p->l4_protocol = ip->protocol;
	p->tot_len = hp_fwd_len(skb, c, ip);
	p->ifindex = c->ifindex;
	p->ipv4_src = ip->saddr;
	p->ipv4_dst = ip->daddr;
	return bpf_fib_lookup(skb, p, sizeof(*p), flags);
}

/* hp_route_mtu is the MTU of the route the FIB gives ip's packet (route
 * metrics and learnt path MTUs included, as ip_forward honours them), asked
 * with the largest length so the lookup answers "too big" and says the MTU;
 * 0 when the FIB answers anything else. For a caller that remembers a
 * route: the next packet of the flow may be longer than this one. */
static __always_inline __u32 hp_route_mtu(struct __sk_buff *skb, const struct hp_ctx *c, const struct iphdr *ip)
{
	struct bpf_fib_lookup p;
	int r;

	__builtin_memset(&p, 0, sizeof(p));
	p.family = HP_AF_INET;
	p.tos = ip->tos;
	p.l4_protocol = ip->protocol;
	p.tot_len = 0xffff;
	p.ifindex = c->ifindex;
	p.ipv4_src = ip->saddr;
	p.ipv4_dst = ip->daddr;
	r = bpf_fib_lookup(skb, &p, sizeof(p), BPF_FIB_LOOKUP_SKIP_NEIGH);
	if (r == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return p.mtu_result;
	return r == BPF_FIB_LKUP_RET_SUCCESS ? 0xffff : 0;
}

/* hp_ttl_dec takes one from the TTL and fixes the IP checksum, as
 * ip_forward does. The caller has checked ip->ttl > 1: a packet that expires
 * here is the kernel's to answer with ICMP time exceeded. A header in the
 * linear data is written in place (the kernel's ip_decrease_ttl); otherwise
 * through the helpers. */
static __always_inline int hp_ttl_dec(struct __sk_buff *skb, const struct hp_ctx *c, const struct iphdr *ip)
{
	/* TTL and protocol share a 16-bit word of the checksum. */
	__u16 old = bpf_htons(((__u16)ip->ttl << 8) | ip->protocol);
	__u16 new = bpf_htons(((__u16)(ip->ttl - 1) << 8) | ip->protocol);
	__u8 ttl = ip->ttl - 1;
	struct iphdr *h = hp_ip_hdr(skb, c->l3_off);

	if (h) {
		__u32 check = h->check;

		check += bpf_htons(0x0100);
		h->check = (__u16)(check + (check >= 0xffff));
		h->ttl = ttl;
		return 0;
	}
	if (bpf_l3_csum_replace(skb, c->l3_off + offsetof(struct iphdr, check), old, new, 2) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, c->l3_off + offsetof(struct iphdr, ttl), &ttl, 1, 0);
}

/* hp_set_macs writes the Ethernet addresses of the next hop, in place when
 * the header is in the linear data. */
static __always_inline int hp_set_macs(struct __sk_buff *skb, const __u8 *dmac, const __u8 *smac)
{
	struct ethhdr *eth = hp_eth_hdr(skb);

	if (eth) {
		__builtin_memcpy(eth->h_dest, dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, smac, ETH_ALEN);
		return 0;
	}
	if (bpf_skb_store_bytes(skb, 0, dmac, ETH_ALEN, 0) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, ETH_ALEN, smac, ETH_ALEN, 0);
}

#endif /* HOTPATH_FIB_H */
