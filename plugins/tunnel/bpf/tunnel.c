// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* VXLAN overlay, owned by the tunnel plugin: one stage in the tunnel slot.
 *
 * At the ingress hook of every device but the overlay device, a packet whose
 * destination (after lb-dnat, which runs earlier) lies in a remote pod CIDR
 * of the tunnel4 map is given a tunnel key (the owning node's underlay
 * address and the VNI) and redirected to the collect_md VXLAN device, whose
 * egress encapsulates it. Its inner Ethernet destination becomes the overlay
 * device's address, which is the same on every node (the supervisor sets
 * it), so the receiving node takes the decapsulated frame as its own.
 *
 * At the ingress hook of the overlay device the packet has just been
 * decapsulated; the stages before this one (ct, policy, ...) ran on it like
 * on any arriving packet, and it is only counted here before the kernel
 * routes it to the pod.
 *
 * A packet with DF that would not fit the overlay device's MTU is answered
 * with ICMP fragmentation needed (the next-hop MTU in it), never dropped
 * silently; without DF the outer packet is fragmented by the kernel. */
#include <linux/if_ether.h>
#include <linux/ip.h>
#include "lib/pipeline.h"
#include "lib/parse.h"
#include "lib/lb.h"

/* Set by the plugin at load time (plugins/tunnel/load.go). */
volatile const __u32 tun_ifindex = 0; /* the overlay device */
volatile const __u32 tun_mtu = 1450;  /* its MTU: the largest inner IPv4 packet */
volatile const __u8 tun_mac[ETH_ALEN] = {};

enum tun_stat {
	TUN_S_ENCAP_PKTS = 0,
	TUN_S_ENCAP_BYTES = 1,
	TUN_S_DECAP_PKTS = 2,
	TUN_S_DECAP_BYTES = 3,
	TUN_S_DROP_KEY = 4,       /* bpf_skb_set_tunnel_key failed */
	TUN_S_DROP_REWRITE = 5,   /* inner header rewrite failed */
	TUN_S_FRAG_NEEDED = 6,    /* ICMP fragmentation needed sent back */
	TUN_S_DROP_TOO_BIG = 7,   /* too big with DF and no ICMP could be built */
	TUN_STATS = 8,
};

/* Private: counters shared by every generation, pinned by the plugin. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TUN_STATS);
	__type(key, __u32);
	__type(value, __u64);
} tun_stats SEC(".maps");

static __always_inline void tun_stat(__u32 k, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&tun_stats, &k);

	if (v)
		*v += n;
}

#define TUN_ICMP_FRAG_NEEDED 4 /* code of DEST_UNREACH */
#define TUN_IP_DF 0x4000

/* tun_frag_needed turns the packet into the ICMP fragmentation needed that
 * answers it, quoting its IP header and first 8 bytes of payload, sent back
 * from the packet's destination out of the device it came in by. */
static __always_inline int tun_frag_needed(struct __sk_buff *skb, struct hp_ctx *c)
{
	struct hp_icmphdr ih = {.type = HP_ICMP_DEST_UNREACH, .code = TUN_ICMP_FRAG_NEEDED};
	__u32 quote[17];
	__u32 qlen;
	__s64 sum;

	ih.sequence = bpf_htons((__u16)tun_mtu);
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

/* tun_too_big answers a packet that does not fit the overlay: 1 when it was
 * answered (or dropped), 0 when it goes on (no DF: the kernel fragments the
 * outer packet). GSO packets were cut to the route's MTU by their sender. */
static __always_inline int tun_too_big(struct __sk_buff *skb, struct hp_ctx *c, int *next)
{
	struct iphdr ip;

	if (skb->gso_size || bpf_skb_load_bytes(skb, c->l3_off, &ip, sizeof(ip)) < 0)
		return 0;
	if (bpf_ntohs(ip.tot_len) <= tun_mtu || !(ip.frag_off & bpf_htons(TUN_IP_DF)))
		return 0;
	if (!(c->parse & HP_P_L4) || (c->parse & HP_P_FRAG_NOHDR) || tun_frag_needed(skb, c) < 0) {
		tun_stat(TUN_S_DROP_TOO_BIG, 1);
		*next = hp_stop(c, HP_R_STAGE_DROP);
		return 1;
	}
	tun_stat(TUN_S_FRAG_NEEDED, 1);
	c->verdict = HP_V_REDIRECT;
	c->redirect_ifindex = c->ifindex;
	c->reason = HP_R_FRAG_NEEDED;
	*next = HP_STOP;
	return 1;
}

static __always_inline int tun_encap(struct __sk_buff *skb, struct hp_ctx *c)
{
	struct hp_tunnel_key k = {.prefixlen = 32, .addr = c->daddr};
	struct bpf_tunnel_key key = {};
	struct hp_tunnel_val *t;
	__u8 mac[ETH_ALEN];
	int next;

	if (c->dir != HP_DIR_INGRESS)
		return HP_SLOT_TUNNEL + 1;
	if (c->ifindex == tun_ifindex) {
		tun_stat(TUN_S_DECAP_PKTS, 1);
		tun_stat(TUN_S_DECAP_BYTES, skb->len);
		return HP_SLOT_TUNNEL + 1;
	}
	t = bpf_map_lookup_elem(&tunnel4, &k);
	if (!t)
		return HP_SLOT_TUNNEL + 1;
	if (tun_too_big(skb, c, &next))
		return next;
	key.remote_ipv4 = bpf_ntohl(t->remote);
	key.tunnel_id = t->vni;
	key.tunnel_ttl = 64;
	if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), 0) < 0) {
		tun_stat(TUN_S_DROP_KEY, 1);
		return hp_stop(c, HP_R_STAGE_DROP);
	}
	/* Element by element through the volatile: a plain copy of a const
	 * array lets the compiler fold in its initializer (zeros). */
#pragma unroll
	for (int i = 0; i < ETH_ALEN; i++)
		mac[i] = tun_mac[i];
	if (bpf_skb_store_bytes(skb, 0, mac, ETH_ALEN, 0) < 0) {
		tun_stat(TUN_S_DROP_REWRITE, 1);
		return hp_stop(c, HP_R_STAGE_DROP);
	}
	tun_stat(TUN_S_ENCAP_PKTS, 1);
	tun_stat(TUN_S_ENCAP_BYTES, skb->len);
	c->verdict = HP_V_REDIRECT;
	c->redirect_ifindex = tun_ifindex;
	return HP_SLOT_TUNNEL + 1;
}

SEC("tc")
int hp_tunnel(struct __sk_buff *skb)
{
	struct hp_ctx *c;

	hp_stage_enter(skb, c);
	return hp_stage_exit(skb, c, tun_encap(skb, c));
}

char __license[] SEC("license") = "Dual BSD/GPL";
