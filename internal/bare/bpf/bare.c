// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The least a TCX datapath does for a forwarded packet, for benchmarks
 * only: look the destination up in one hash, write the next hop's MACs and
 * bpf_redirect_peer into the pod. No parse beyond the IPv4 header, no TTL,
 * no conntrack, no translation, no counters. Set beside plain routing and
 * beside hotpath in the same run, it splits hotpath's cost into what the
 * hook and the redirect cost any TCX datapath and what its stages add. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct bare_hop {
	__u32 ifindex; /* node-side veth of the pod the address lives in */
	__u8 dmac[ETH_ALEN];
	__u8 smac[ETH_ALEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32); /* IPv4 destination, network order */
	__type(value, struct bare_hop);
} bare_hops SEC(".maps");

SEC("tc")
int bare_forward(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct bare_hop *h;

	/* Anything else (ARP, a short frame) is the kernel's. */
	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	h = bpf_map_lookup_elem(&bare_hops, &ip->daddr);
	if (!h)
		return TC_ACT_OK;
	__builtin_memcpy(eth->h_dest, h->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, h->smac, ETH_ALEN);
	return bpf_redirect_peer(h->ifindex, 0);
}

char __license[] SEC("license") = "Dual BSD/GPL";
