/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Packet reads for every stage: straight from the skb's linear data where
 * the bytes lie there, through the helper otherwise. A helper call costs
 * ~30-50 ns on the VMs we measure on, and the headers of nearly every packet
 * are linear, so each header read on the hot path saves that. */
#ifndef HOTPATH_PKT_H
#define HOTPATH_PKT_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>

/* HP_PKT_MAX_OFF bounds a variable offset so the verifier accepts it on a
 * packet pointer (its own limit is MAX_PACKET_OFF, 0xffff). */
#define HP_PKT_MAX_OFF 0x3fff

/* hp_load copies len (a constant) bytes at off into to, as
 * bpf_skb_load_bytes does, and fails where it fails. */
static __always_inline int hp_load(struct __sk_buff *skb, __u32 off, void *to, const __u32 len)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;

	if (off <= HP_PKT_MAX_OFF) {
		void *p;

		/* The mask changes nothing after the check, but the verifier
		 * needs the bound on the register that moves the pointer, and
		 * clang, which knows it changes nothing, would drop it. */
		asm volatile("" : "+r"(off));
		p = data + (off & HP_PKT_MAX_OFF);
		if (p + len <= end) {
			__builtin_memcpy(to, p, len);
			return 0;
		}
	}
	return bpf_skb_load_bytes(skb, off, to, len);
}

/* hp_store writes len (a constant) bytes from from at off, as
 * bpf_skb_store_bytes does without flags. A program that writes packet data
 * directly has its skb uncloned as it starts (the verifier's prologue), as
 * the helper would on its first write. */
static __always_inline int hp_store(struct __sk_buff *skb, __u32 off, const void *from, const __u32 len)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;

	if (off <= HP_PKT_MAX_OFF) {
		void *p;

		asm volatile("" : "+r"(off)); /* as in hp_load */
		p = data + (off & HP_PKT_MAX_OFF);
		if (p + len <= end) {
			__builtin_memcpy(p, from, len);
			return 0;
		}
	}
	return bpf_skb_store_bytes(skb, off, from, len, 0);
}

/* hp_eth_hdr is the Ethernet header for writing in place, NULL when it is
 * not in the linear data (the caller then goes through the helpers). */
static __always_inline struct ethhdr *hp_eth_hdr(struct __sk_buff *skb)
{
	struct ethhdr *eth = (void *)(long)skb->data;

	if ((void *)(eth + 1) > (void *)(long)skb->data_end)
		return NULL;
	return eth;
}

/* hp_ip_hdr is the IPv4 header at l3_off for writing in place, NULL when it
 * is not right behind an Ethernet header in the linear data. */
static __always_inline struct iphdr *hp_ip_hdr(struct __sk_buff *skb, __u16 l3_off)
{
	struct iphdr *ip = (void *)(long)skb->data + ETH_HLEN;

	if (l3_off != ETH_HLEN || (void *)(ip + 1) > (void *)(long)skb->data_end)
		return NULL;
	return ip;
}

#endif /* HOTPATH_PKT_H */
