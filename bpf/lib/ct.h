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
/* Per-entry packet and byte counters (Cilium's bpf-conntrack-accounting
 * switch). Both directions of a flow count in its entry, and the two
 * directions are often handled on different CPUs: every packet then pulls
 * the entry's cache line over from the other CPU. Off, an established
 * flow's entries are only read (lifetime, last_seen and the report fields
 * change at most once a second; make bench's lab measures the difference).
 * Each plugin that writes CT entries sets
 * it from its config (ct; lb for CT_SERVICE entries). */
volatile const __u32 ct_accounting = 1;
/* Layout of the value of the pinned CT maps: 1 (hp_ct_entry) or 2
 * (hp_ct_entry_v2). Every loader sets it from the maps it loads against
 * (pin.Fit); the verifier never visits the branches of the other layout, so
 * one object serves both and writes beyond layout 1 only into layout 2. */
volatile const __u32 hp_ct_layout = 1;

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

#define CT_F_CLOSING (HP_CT_F_RX_CLOSING | HP_CT_F_TX_CLOSING)

/* ct_alive: an entry is dead once both directions are closing (Cilium's
 * ct_entry_alive). A dead entry keeps the close lifetime it got when it
 * died: packets after that (the last ACKs) do not extend it. */
static __always_inline int ct_alive(__u32 flags)
{
	return (flags & CT_F_CLOSING) != CT_F_CLOSING;
}

/* ct_lifetime of a live entry: SYN lifetime until a packet without SYN was
 * seen (the connection is established), then the TCP one. */
static __always_inline __u32 ct_lifetime(const struct hp_ctx *c, __u32 flags)
{
	if (c->proto != IPPROTO_TCP)
		return ct_lifetime_nontcp;
	if (flags & HP_CT_F_SEEN_NON_SYN)
		return ct_lifetime_tcp;
	return ct_lifetime_syn;
}

/* ct_close_flags is what a FIN or RST closes (Cilium's ACTION_CLOSE). A
 * service entry sees only the original direction of its flow, so one FIN
 * closes both directions, or it would never die before the TCP lifetime.
 * An RST closes both directions of any entry: nothing follows it on either
 * side, and the kernel's conntrack also goes to CLOSE on it. */
static __always_inline __u32 ct_close_flags(__u8 tf, int reply, int svc)
{
	if (svc || (tf & HP_TCP_RST))
		return CT_F_CLOSING;
	return reply ? HP_CT_F_RX_CLOSING : HP_CT_F_TX_CLOSING;
}

/* ct_refresh updates a known entry in place: counters with atomic adds,
 * state with atomic ors, the lifetime only when it changes, so an
 * established flow costs one lookup and no map update. svc: the entry is a
 * CT_SERVICE entry. */
static __always_inline void ct_refresh(struct hp_ct_entry *e, const struct hp_ctx *c, int reply, int svc, __u32 now)
{
	__u8 tf = c->tcp_flags;
	__u32 flags = e->flags, set = 0, lifetime;

	if (ct_accounting) {
		__sync_fetch_and_add(&e->packets, 1);
		__sync_fetch_and_add(&e->bytes, c->len);
	}
	if (hp_ct_layout >= 2) {
		struct hp_ct_entry_v2 *e2 = (void *)e;

		if (ct_accounting && reply) {
			__sync_fetch_and_add(&e2->rx_packets, 1);
			__sync_fetch_and_add(&e2->rx_bytes, c->len);
		}
		if (e2->last_seen != now)
			e2->last_seen = now;
	}

	if (c->proto != IPPROTO_TCP) {
		lifetime = now + ct_lifetime_nontcp;
		goto update;
	}
	if (tf & (HP_TCP_FIN | HP_TCP_RST)) {
		set = ct_close_flags(tf, reply, svc);
		if (!(tf & HP_TCP_SYN))
			set |= HP_CT_F_SEEN_NON_SYN;
		if ((flags & set) != set)
			flags = __sync_fetch_and_or(&e->flags, set) | set;
		/* Dead now (or again: a retransmitted FIN re-arms it, as in
		 * Cilium): the close lifetime. Still alive: a half close. */
		lifetime = now + (ct_alive(flags) ? ct_lifetime(c, flags) : ct_lifetime_close);
		goto update;
	}
	/* A SYN on a closing entry opens a new connection on an old tuple. */
	if ((tf & (HP_TCP_SYN | HP_TCP_ACK)) == HP_TCP_SYN && (flags & CT_F_CLOSING)) {
		__sync_fetch_and_and(&e->flags, ~(__u32)(CT_F_CLOSING | HP_CT_F_SEEN_NON_SYN));
		e->tx_flags_seen = 0;
		e->rx_flags_seen = 0;
		flags &= ~(__u32)(CT_F_CLOSING | HP_CT_F_SEEN_NON_SYN);
	}
	if (!ct_alive(flags))
		goto report;
	if (!(tf & HP_TCP_SYN) && !(flags & HP_CT_F_SEEN_NON_SYN)) {
		__sync_fetch_and_or(&e->flags, HP_CT_F_SEEN_NON_SYN);
		flags |= HP_CT_F_SEEN_NON_SYN;
	}
	lifetime = now + ct_lifetime(c, flags);
update:
	if (e->lifetime != lifetime)
		e->lifetime = lifetime;
report:
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

/* ct_create inserts the entry of a packet no entry knows. svc: a CT_SERVICE
 * entry. */
static __always_inline int ct_create(void *map, const struct hp_ct_tuple *t, struct hp_ctx *c, int svc, __u32 now)
{
	/* Built in the widest layout: the kernel copies value_size bytes of
	 * it, layout 1's prefix or all of layout 2. */
	struct hp_ct_entry_v2 e = {};
	__u8 tf = c->tcp_flags;

	if (ct_accounting) {
		e.packets = 1;
		e.bytes = c->len;
	}
	if (c->proto == IPPROTO_TCP) {
		if (tf & (HP_TCP_FIN | HP_TCP_RST))
			e.flags |= ct_close_flags(tf, 0, svc);
		if (!(tf & HP_TCP_SYN))
			e.flags |= HP_CT_F_SEEN_NON_SYN;
	}
	e.lifetime = now + (ct_alive(e.flags) ? ct_lifetime(c, e.flags) : ct_lifetime_close);
	e.rev_nat_index = c->rev_nat_index;
	e.backend_id = c->backend_id;
	e.src_sec_id = c->src_sec_id;
	e.tx_flags_seen = tf;
	e.last_tx_report = now;
	e.created = now;
	e.last_seen = now;
	return bpf_map_update_elem(map, t, &e, BPF_NOEXIST);
}

#endif /* HOTPATH_CT_H */
