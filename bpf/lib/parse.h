/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Parse once: the entry program fills the per-packet context from L2-L4. */
#ifndef HOTPATH_PARSE_H
#define HOTPATH_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "abi.h"
#include "maps.h"
#include "pkt.h"

#define HP_TCP_FIN 0x01
#define HP_TCP_SYN 0x02
#define HP_TCP_RST 0x04
#define HP_TCP_PSH 0x08
#define HP_TCP_ACK 0x10

/* linux/icmp.h drags in libc socket headers; the echo header is all we need. */
struct hp_icmphdr {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__u16 id;
	__u16 sequence;
};
#define HP_ICMP_ECHOREPLY 0
#define HP_ICMP_ECHO 8

#define HP_ICMP_DEST_UNREACH 3
#define HP_ICMP_TIME_EXCEEDED 11
#define HP_ICMP_PARAMETERPROB 12
#define HP_ICMP_PORT_UNREACH 3 /* code of DEST_UNREACH */

#define HP_ETH_P_8021Q 0x8100
#define HP_ETH_P_8021AD 0x88A8
#define HP_ETH_P_IPV6 0x86DD

#define HP_IP_MF 0x2000
#define HP_IP_OFFSET 0x1fff

enum hp_parse_result {
	HP_PARSE_OK = 0,
	HP_PARSE_NOT_IPV4 = 1,  /* another ethertype (ARP, ...) */
	HP_PARSE_ERROR = 2,
	HP_PARSE_IPV6 = 3,
	HP_PARSE_VLAN = 4,
	HP_PARSE_FRAG_NOT_FOUND = 5,
};

/* hp_parse_icmp_err reads the packet an ICMP error quotes (its IP header
 * and the first 8 bytes of its L4 header, all RFC 792 guarantees) at off.
 * A quote that is cut short, a later fragment or an untracked protocol leaves
 * the error untracked: it passes, as any other ICMP. */
static __always_inline void hp_parse_icmp_err(struct __sk_buff *skb, struct hp_ctx *c, __u32 off, __u32 end)
{
	struct iphdr ip;
	__u16 ports[2];
	__u32 ihl;

	if (off + sizeof(ip) > end || hp_load(skb, off, &ip, sizeof(ip)) < 0)
		return;
	ihl = ip.ihl * 4;
	if (ip.version != 4 || ihl < sizeof(ip) || off + ihl + 8 > end ||
	    (ip.frag_off & bpf_htons(HP_IP_OFFSET)))
		return;
	if (hp_load(skb, off + ihl, ports, sizeof(ports)) < 0)
		return;
	switch (ip.protocol) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		c->inner_sport = ports[0];
		c->inner_dport = ports[1];
		break;
	case IPPROTO_ICMP: {
		struct hp_icmphdr ih;

		if (hp_load(skb, off + ihl, &ih, sizeof(ih)) < 0)
			return;
		/* Same placement of the echo identifier as for an outer packet. */
		if (ih.type == HP_ICMP_ECHO) {
			c->inner_sport = ih.id;
			c->inner_dport = 0;
		} else if (ih.type == HP_ICMP_ECHOREPLY) {
			c->inner_sport = 0;
			c->inner_dport = ih.id;
		} else {
			return;
		}
		break;
	}
	default:
		return;
	}
	c->inner_saddr = ip.saddr;
	c->inner_daddr = ip.daddr;
	c->inner_proto = ip.protocol;
	c->inner_l3_off = off;
	c->inner_l4_off = off + ihl;
	c->parse |= HP_P_ICMP_ERR;
}

static __always_inline struct hp_frag4_key hp_frag_key(const struct iphdr *ip)
{
	struct hp_frag4_key k = {
		.saddr = ip->saddr, .daddr = ip->daddr, .id = ip->id, .proto = ip->protocol,
	};
	return k;
}

/* hp_frag_record leaves a first fragment's ports for the later ones. */
static __always_inline void hp_frag_record(const struct iphdr *ip, __u16 sport, __u16 dport)
{
	struct hp_frag4_key k = hp_frag_key(ip);
	struct hp_frag4_ports p = {.sport = sport, .dport = dport};

	bpf_map_update_elem(&frag4, &k, &p, BPF_ANY);
}

/* hp_parse_frag_rest gives a later fragment the ports its first fragment
 * left in frag4. Protocols whose ports are tracked need them (a fragment
 * without them cannot be translated or judged, Cilium drops it too); other
 * protocols pass as before. */
static __always_inline int hp_parse_frag_rest(struct hp_ctx *c, const struct iphdr *ip)
{
	struct hp_frag4_key k = hp_frag_key(ip);
	struct hp_frag4_ports *p;

	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP && ip->protocol != IPPROTO_ICMP)
		return HP_PARSE_OK;
	p = bpf_map_lookup_elem(&frag4, &k);
	if (!p)
		return HP_PARSE_FRAG_NOT_FOUND;
	c->sport = p->sport;
	c->dport = p->dport;
	c->parse |= HP_P_L4 | HP_P_FRAG_NOHDR;
	return HP_PARSE_OK;
}

/* hp_parse fills c from the packet. Headers are copied with hp_load so a
 * non-linear skb parses the same as a linear one. */
static __always_inline int hp_parse(struct __sk_buff *skb, struct hp_ctx *c)
{
	struct ethhdr eth;
	struct iphdr ip;
	__u32 ihl, tot;
	int first_frag = 0;

	if (hp_load(skb, 0, &eth, sizeof(eth)) < 0)
		return HP_PARSE_ERROR;
	if (eth.h_proto != bpf_htons(ETH_P_IP)) {
		if (eth.h_proto == bpf_htons(HP_ETH_P_IPV6))
			return HP_PARSE_IPV6;
		if (eth.h_proto == bpf_htons(HP_ETH_P_8021Q) || eth.h_proto == bpf_htons(HP_ETH_P_8021AD))
			return HP_PARSE_VLAN;
		return HP_PARSE_NOT_IPV4;
	}
	if (hp_load(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return HP_PARSE_ERROR;
	ihl = ip.ihl * 4;
	tot = bpf_ntohs(ip.tot_len);
	/* IPv4 BIG TCP: a TCP GSO packet above 64 KiB carries total length 0
	 * and is as long as the skb (the kernel's iph_totlen()). */
	if (tot == 0 && skb->gso_size && ip.protocol == IPPROTO_TCP)
		tot = skb->len - ETH_HLEN;
	if (ip.version != 4 || ihl < sizeof(ip) || tot < ihl || tot > skb->len - ETH_HLEN)
		return HP_PARSE_ERROR;

	c->parse = HP_P_IPV4;
	c->saddr = ip.saddr;
	c->daddr = ip.daddr;
	c->proto = ip.protocol;
	c->l3_off = ETH_HLEN;
	c->l4_off = ETH_HLEN + ihl;

	if (ip.frag_off & bpf_htons(HP_IP_MF | HP_IP_OFFSET)) {
		c->parse |= HP_P_FRAG;
		c->reason = HP_R_FRAGMENT;
		/* A later fragment carries no L4 header. */
		if (ip.frag_off & bpf_htons(HP_IP_OFFSET))
			return hp_parse_frag_rest(c, &ip);
		first_frag = 1;
	}

	switch (ip.protocol) {
	case IPPROTO_TCP: {
		struct tcphdr th;

		if (tot < ihl + sizeof(th) ||
		    hp_load(skb, c->l4_off, &th, sizeof(th)) < 0 || th.doff < 5 ||
		    tot < ihl + th.doff * 4)
			return HP_PARSE_ERROR;
		c->sport = th.source;
		c->dport = th.dest;
		/* byte 13 of the TCP header holds FIN..CWR */
		c->tcp_flags = ((__u8 *)&th)[13];
		break;
	}
	case IPPROTO_UDP: {
		struct udphdr uh;

		if (tot < ihl + sizeof(uh) ||
		    hp_load(skb, c->l4_off, &uh, sizeof(uh)) < 0)
			return HP_PARSE_ERROR;
		c->sport = uh.source;
		c->dport = uh.dest;
		break;
	}
	case IPPROTO_ICMP: {
		struct hp_icmphdr ih;

		if (tot < ihl + sizeof(ih) ||
		    hp_load(skb, c->l4_off, &ih, sizeof(ih)) < 0)
			return HP_PARSE_ERROR;
		/* Echo request and reply are tracked on the identifier, placed so a
		 * reply's reversed tuple equals the request's. */
		if (ih.type == HP_ICMP_ECHO) {
			c->sport = ih.id;
			c->dport = 0;
		} else if (ih.type == HP_ICMP_ECHOREPLY) {
			c->sport = 0;
			c->dport = ih.id;
		} else {
			c->sport = 0;
			c->dport = 0;
			/* Errors belong to the flow they quote, not to a flow of
			 * their own: matched by the ct stage as RELATED. */
			if (ih.type == HP_ICMP_DEST_UNREACH || ih.type == HP_ICMP_TIME_EXCEEDED ||
			    ih.type == HP_ICMP_PARAMETERPROB) {
				if (!first_frag)
					hp_parse_icmp_err(skb, c, c->l4_off + sizeof(ih), ETH_HLEN + tot);
				else /* never tracked, but its later fragments may pass */
					hp_frag_record(&ip, 0, 0);
				return HP_PARSE_OK;
			}
		}
		break;
	}
	default:
		return HP_PARSE_OK;
	}
	c->parse |= HP_P_L4;
	if (first_frag)
		hp_frag_record(&ip, c->sport, c->dport);
	return HP_PARSE_OK;
}

#endif /* HOTPATH_PARSE_H */
