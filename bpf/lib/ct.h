/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Conntrack helpers: tuples and in-place entry refresh, Cilium's semantics. */
#ifndef HOTPATH_CT_H
#define HOTPATH_CT_H

#include <linux/in.h>
#include "pipeline.h"
#include "parse.h"

/* Lifetimes in seconds; the ct plugin sets them at load time from its config.
 * Defaults are Cilium's. */
volatile const __u32 ct_lifetime_tcp = 21600;
volatile const __u32 ct_lifetime_syn = 60;
volatile const __u32 ct_lifetime_close = 10;
volatile const __u32 ct_lifetime_nontcp = 60;
/* Seconds between reports of unchanged flags, as Cilium's monitor aggregation. */
volatile const __u32 ct_report_interval = 5;

/* ct_tuple_fill builds the key of the packet as it travels. */
static __always_inline void ct_tuple_fill(struct hp_ct_tuple *t, const struct hp_ctx *c, __u8 flags)
{
	t->daddr = c->daddr;
	t->saddr = c->saddr;
	t->dport = c->dport;
	t->sport = c->sport;
	t->nexthdr = c->proto;
	t->flags = flags;
	t->pad = 0;
}

/* ct_tuple_reverse builds the key under which the other side of the
 * connection was first seen. */
static __always_inline void ct_tuple_reverse(struct hp_ct_tuple *t, const struct hp_ctx *c, __u8 flags)
{
	t->daddr = c->saddr;
	t->saddr = c->daddr;
	t->dport = c->sport;
	t->sport = c->dport;
	t->nexthdr = c->proto;
	t->flags = flags;
	t->pad = 0;
}

static __always_inline __u32 ct_lifetime(const struct hp_ctx *c, __u32 flags)
{
	if (c->proto != IPPROTO_TCP)
		return ct_lifetime_nontcp;
	if ((flags & (HP_CT_F_RX_CLOSING | HP_CT_F_TX_CLOSING)) ==
	    (HP_CT_F_RX_CLOSING | HP_CT_F_TX_CLOSING))
		return ct_lifetime_close;
	if (flags & HP_CT_F_SEEN_NON_SYN)
		return ct_lifetime_tcp;
	return ct_lifetime_syn;
}

/* ct_refresh updates a live entry in place: counters with atomic adds,
 * closing state with atomic ors, the lifetime only when it changes, so an
 * established flow costs one lookup and no map update. */
static __always_inline void ct_refresh(struct hp_ct_entry *e, const struct hp_ctx *c, int reply, __u32 now)
{
	__u8 tf = c->tcp_flags;
	__u32 flags, set = 0, lifetime;

	__sync_fetch_and_add(&e->packets, 1);
	__sync_fetch_and_add(&e->bytes, c->len);

	if (c->proto == IPPROTO_TCP) {
		/* A SYN on a closing entry is a new connection on an old tuple. */
		if ((tf & (HP_TCP_SYN | HP_TCP_ACK)) == HP_TCP_SYN &&
		    (e->flags & (HP_CT_F_RX_CLOSING | HP_CT_F_TX_CLOSING)))
			__sync_fetch_and_and(&e->flags, ~(__u32)(HP_CT_F_RX_CLOSING | HP_CT_F_TX_CLOSING |
								HP_CT_F_SEEN_NON_SYN));
		if (tf & HP_TCP_RST)
			set |= HP_CT_F_RX_CLOSING | HP_CT_F_TX_CLOSING;
		else if (tf & HP_TCP_FIN)
			set |= reply ? HP_CT_F_RX_CLOSING : HP_CT_F_TX_CLOSING;
		if (!(tf & HP_TCP_SYN))
			set |= HP_CT_F_SEEN_NON_SYN;
		if ((e->flags & set) != set)
			__sync_fetch_and_or(&e->flags, set);
	}
	flags = e->flags;
	lifetime = now + ((tf & HP_TCP_RST) && c->proto == IPPROTO_TCP ? ct_lifetime_close
									 : ct_lifetime(c, flags));
	if (e->lifetime != lifetime)
		e->lifetime = lifetime;

	if (reply) {
		if ((e->rx_flags_seen | tf) != e->rx_flags_seen ||
		    now - e->last_rx_report >= ct_report_interval) {
			e->rx_flags_seen |= tf;
			e->last_rx_report = now;
		}
	} else {
		if ((e->tx_flags_seen | tf) != e->tx_flags_seen ||
		    now - e->last_tx_report >= ct_report_interval) {
			e->tx_flags_seen |= tf;
			e->last_tx_report = now;
		}
	}
}

/* ct_create inserts the entry of a packet no entry knows. */
static __always_inline int ct_create(void *map, const struct hp_ct_tuple *t, struct hp_ctx *c, __u32 now)
{
	struct hp_ct_entry e = {};

	e.packets = 1;
	e.bytes = c->len;
	if (c->proto == IPPROTO_TCP) {
		if (c->tcp_flags & HP_TCP_RST)
			e.flags |= HP_CT_F_RX_CLOSING | HP_CT_F_TX_CLOSING;
		else if (c->tcp_flags & HP_TCP_FIN)
			e.flags |= HP_CT_F_TX_CLOSING;
		if (!(c->tcp_flags & HP_TCP_SYN))
			e.flags |= HP_CT_F_SEEN_NON_SYN;
	}
	e.lifetime = now + ((c->tcp_flags & HP_TCP_RST) && c->proto == IPPROTO_TCP
				    ? ct_lifetime_close
				    : ct_lifetime(c, e.flags));
	e.rev_nat_index = c->rev_nat_index;
	e.backend_id = c->backend_id;
	e.src_sec_id = c->src_sec_id;
	e.tx_flags_seen = c->tcp_flags;
	e.last_tx_report = now;
	e.created = now;
	return bpf_map_update_elem(map, t, &e, BPF_NOEXIST);
}

#endif /* HOTPATH_CT_H */
