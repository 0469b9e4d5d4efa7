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

enum hp_parse_result {
	HP_PARSE_OK = 0,
	HP_PARSE_NOT_IPV4 = 1,
	HP_PARSE_ERROR = 2,
};

/* hp_parse fills c from the packet. Headers are copied with
 * bpf_skb_load_bytes so a non-linear skb parses the same as a linear one. */
static __always_inline int hp_parse(struct __sk_buff *skb, struct hp_ctx *c)
{
	struct ethhdr eth;
	struct iphdr ip;
	__u32 ihl, tot;

	if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)) < 0)
		return HP_PARSE_ERROR;
	if (eth.h_proto != bpf_htons(ETH_P_IP))
		return HP_PARSE_NOT_IPV4;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return HP_PARSE_ERROR;
	ihl = ip.ihl * 4;
	tot = bpf_ntohs(ip.tot_len);
	if (ip.version != 4 || ihl < sizeof(ip) || tot < ihl || tot > skb->len - ETH_HLEN)
		return HP_PARSE_ERROR;

	c->parse = HP_P_IPV4;
	c->saddr = ip.saddr;
	c->daddr = ip.daddr;
	c->proto = ip.protocol;
	c->l3_off = ETH_HLEN;
	c->l4_off = ETH_HLEN + ihl;

	/* A non-first fragment carries no L4 header. */
	if (ip.frag_off & bpf_htons(0x1fff)) {
		c->parse |= HP_P_FRAG;
		return HP_PARSE_OK;
	}
	if (ip.frag_off & bpf_htons(0x2000))
		c->parse |= HP_P_FRAG;

	switch (ip.protocol) {
	case IPPROTO_TCP: {
		struct tcphdr th;

		if (tot < ihl + sizeof(th) ||
		    bpf_skb_load_bytes(skb, c->l4_off, &th, sizeof(th)) < 0 || th.doff < 5 ||
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
		    bpf_skb_load_bytes(skb, c->l4_off, &uh, sizeof(uh)) < 0)
			return HP_PARSE_ERROR;
		c->sport = uh.source;
		c->dport = uh.dest;
		break;
	}
	case IPPROTO_ICMP: {
		struct hp_icmphdr ih;

		if (tot < ihl + sizeof(ih) ||
		    bpf_skb_load_bytes(skb, c->l4_off, &ih, sizeof(ih)) < 0)
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
		}
		break;
	}
	default:
		return HP_PARSE_OK;
	}
	c->parse |= HP_P_L4;
	return HP_PARSE_OK;
}

#endif /* HOTPATH_PARSE_H */
