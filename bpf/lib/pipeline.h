/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Pipeline helpers shared by the entry programs and every stage. */
#ifndef HOTPATH_PIPELINE_H
#define HOTPATH_PIPELINE_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "abi.h"
#include "maps.h"

/* The entry program records the direction in skb->cb[0], which survives tail
 * calls, so a stage finds its packet's context without knowing its hook. */
#define HP_CB_DIR 0

static __always_inline struct hp_ctx *hp_ctx_get(__u32 dir)
{
	return bpf_map_lookup_elem(&pctx, &dir);
}

static __always_inline struct hp_ctx *hp_ctx_load(struct __sk_buff *skb)
{
	return hp_ctx_get(skb->cb[HP_CB_DIR] & 1);
}

/* hp_stage_enter: every stage starts with this. */
#define hp_stage_enter(skb, c)                                          \
	do {                                                            \
		c = hp_ctx_load(skb);                                   \
		if (!c) {                                               \
			hp_count(HP_R_NO_CONTEXT, skb->cb[HP_CB_DIR] & 1, skb->len); \
			return TC_ACT_SHOT;                             \
		}                                                       \
	} while (0)

static __always_inline void hp_count(__u32 reason, __u32 dir, __u32 len)
{
	__u32 key = (reason << 1) | (dir & 1);
	struct hp_metric *m = bpf_map_lookup_elem(&metrics, &key);

	/* per-CPU value: no atomics needed */
	if (m) {
		m->packets++;
		m->bytes += len;
	}
}

/* hp_monitoring tells whether a monitor wants events of kind bit
 * (HP_MON_*). The config map is an ARRAY, so the lookup is inlined: an
 * unwatched datapath pays a load and a branch, never ring buffer space. */
static __always_inline int hp_monitoring(__u32 bit)
{
	__u32 zero = 0;
	struct hp_config *cfg = bpf_map_lookup_elem(&config, &zero);

	return cfg && (*(volatile __u32 *)&cfg->flags & bit);
}

/* hp_emit writes one event about the packet to the events ring buffer. A
 * full ring loses the event, never the packet. */
static __always_inline void hp_emit(struct hp_ctx *c, __u8 type)
{
	struct hp_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e)
		return;
	e->version = HP_EVENT_VERSION;
	e->type = type;
	e->reason = c->reason;
	e->dir = c->dir;
	e->slot = c->slot;
	e->proto = c->proto;
	e->verdict = c->verdict;
	e->ct_status = c->ct_status;
	e->ifindex = c->ifindex;
	e->saddr = c->saddr;
	e->daddr = c->daddr;
	e->sport = c->sport;
	e->dport = c->dport;
	e->gen = c->gen;
	e->src_id = c->src_sec_id;
	e->dst_id = c->dst_sec_id;
	e->len = c->len;
	e->ts_ns = bpf_ktime_get_ns();
	bpf_ringbuf_submit(e, 0);
}

/* hp_finish ends the pipeline: counts the packet under its reason, reports
 * it to a watching monitor (every drop of every stage passes here) and turns
 * the context's verdict into a tc return code. */
static __always_inline int hp_finish(struct __sk_buff *skb, struct hp_ctx *c)
{
	hp_count(c->reason, c->dir, c->len);
	if (c->verdict == HP_V_DROP) {
		if (hp_monitoring(HP_MON_DROP))
			hp_emit(c, HP_EV_DROP);
	} else if (hp_monitoring(HP_MON_TRACE)) {
		hp_emit(c, HP_EV_TRACE);
	}
	switch (c->verdict) {
	case HP_V_DROP:
		return TC_ACT_SHOT;
	case HP_V_REDIRECT:
		return bpf_redirect(c->redirect_ifindex, 0);
	case HP_V_REDIRECT_PEER:
		return bpf_redirect_peer(c->redirect_ifindex, 0);
	case HP_V_REDIRECT_NEIGH:
		return bpf_redirect_neigh(c->redirect_ifindex, 0, 0, 0);
	default:
		return TC_ACT_OK;
	}
}

static __always_inline int hp_drop(struct __sk_buff *skb, struct hp_ctx *c, __u8 reason)
{
	c->verdict = HP_V_DROP;
	c->reason = reason;
	return hp_finish(skb, c);
}

/* hp_tail_const tail-calls index idx of calls, a compile-time constant. The
 * verifier then knows the key at this call and the x86 JIT emits a direct
 * jump, re-patched whenever the index's slot changes, instead of an indirect
 * one: with retpolines an indirect jump costs ~15 ns, paid on every hop of
 * every packet. The asm keeps clang from merging call sites into one with the
 * key in a register, which would make it unknown again. Falls through when
 * the index is empty, as bpf_tail_call does. */
#define hp_tail_const(skb, idx)                                                  \
	asm volatile("r1 = %[ctx]\n\t"                                           \
		     "r2 = %[map]\n\t"                                           \
		     "r3 = %[key]\n\t"                                           \
		     "call 12\n\t"                                               \
		     : : [ctx] "r"(skb), [map] "r"(&calls), [key] "i"(idx)      \
		     : "r0", "r1", "r2", "r3", "r4", "r5")

_Static_assert(HP_BANKS == 16 && HP_SLOTS == 17, "hp_next_from spells out every bank and slot");
/* hp_ctx.skip has 16 bits: the check slot, last, can never be passed over,
 * so a packet's generation stamps are always checked where it is installed. */
_Static_assert(HP_SLOT_CHECK == 16, "the check slot must lie beyond hp_ctx.skip");

/* HP_TAIL_SLOT enters slot `s` (a literal) of bank `bank` (known only at run
 * time): one constant call site per bank, chosen by a switch. */
#define HP_TAIL_BANK(b, s)                                                       \
	case b:                                                                  \
		hp_tail_const(skb, (b) * HP_SLOTS + (s));                        \
		break
#define HP_TAIL_SLOT(s)                                                          \
	switch (bank) {                                                          \
	HP_TAIL_BANK(0, s); HP_TAIL_BANK(1, s); HP_TAIL_BANK(2, s);               \
	HP_TAIL_BANK(3, s); HP_TAIL_BANK(4, s); HP_TAIL_BANK(5, s);               \
	HP_TAIL_BANK(6, s); HP_TAIL_BANK(7, s); HP_TAIL_BANK(8, s);               \
	HP_TAIL_BANK(9, s); HP_TAIL_BANK(10, s); HP_TAIL_BANK(11, s);             \
	HP_TAIL_BANK(12, s); HP_TAIL_BANK(13, s); HP_TAIL_BANK(14, s);            \
	HP_TAIL_BANK(15, s);                                                     \
	}
/* An object built with HP_TAIL_INDIRECT enters slots through a computed
 * index: no direct jump to patch, so inserting into calls costs nothing per
 * program that uses it (with direct jumps every insert re-patches one site in
 * every loaded program that tail-calls through calls, ~70 us each on a VM).
 * For test stages loaded by the hundred and flipped 100k times; production
 * stages use direct jumps. */
#ifdef HP_TAIL_INDIRECT
#undef HP_TAIL_SLOT
#define HP_TAIL_SLOT(s) bpf_tail_call(skb, &calls, bank * HP_SLOTS + (s))
#endif

/* HP_TRY_SLOT enters slot s if it is the first one left. */
#define HP_TRY_SLOT(s)                                                           \
	if (rest & (1u << (s))) {                                                \
		c->slot = (s);                                                   \
		c->hops++;                                                       \
		HP_TAIL_SLOT(s);                                                 \
		goto missed;                                                     \
	}

/* hp_next_from tail-calls the first occupied slot at or after `first` in the
 * packet's own generation bank, or ends the pipeline when none is left. An
 * occupied slot that cannot be entered is a missed tail call and drops the
 * packet, as in Cilium: skipping it could skip policy. Slots a stage marked
 * in c->skip are passed over without a tail call: a stage with nothing to do
 * for this packet costs nothing. */
static __always_inline int hp_next_from(struct __sk_buff *skb, struct hp_ctx *c, __u32 first)
{
	__u32 rest = c->mask & ~(__u32)c->skip & ~((1u << first) - 1);
	__u32 bank = c->gen % HP_BANKS;

	if (c->verdict == HP_V_DROP || !rest)
		return hp_finish(skb, c);
	HP_TRY_SLOT(0) HP_TRY_SLOT(1) HP_TRY_SLOT(2) HP_TRY_SLOT(3)
	HP_TRY_SLOT(4) HP_TRY_SLOT(5) HP_TRY_SLOT(6) HP_TRY_SLOT(7)
	HP_TRY_SLOT(8) HP_TRY_SLOT(9) HP_TRY_SLOT(10) HP_TRY_SLOT(11)
	HP_TRY_SLOT(12) HP_TRY_SLOT(13) HP_TRY_SLOT(14) HP_TRY_SLOT(15)
	HP_TRY_SLOT(16)
missed:
	return hp_drop(skb, c, HP_R_MISSED_TAIL_CALL);
}

/* hp_next leaves the stage in `slot` for the next occupied one. */
static __always_inline int hp_next(struct __sk_buff *skb, struct hp_ctx *c, __u32 slot)
{
	return hp_next_from(skb, c, slot + 1);
}

/* Stage bodies return the first slot to continue from, or HP_STOP once
 * hp_stop has set a drop verdict. The same body runs as a tail-call stage
 * (hp_stage_exit) or inline in a monolithic program. */
#define HP_STOP (-1)

static __always_inline int hp_stop(struct hp_ctx *c, __u8 reason)
{
	c->verdict = HP_V_DROP;
	c->reason = reason;
	return HP_STOP;
}

static __always_inline int hp_stage_exit(struct __sk_buff *skb, struct hp_ctx *c, int next)
{
	if (next < 0)
		return hp_finish(skb, c);
	return hp_next_from(skb, c, next);
}

/* hp_stamp records that a stage of generation `gen` ran for this packet. */
static __always_inline void hp_stamp(struct hp_ctx *c, __u32 gen)
{
	if (!c->stamp_first)
		c->stamp_first = gen;
	c->stamp_last = gen;
}

/* Coarse monotonic clock in seconds: CLOCK_MONOTONIC_COARSE, the same clock
 * userspace GC reads; ~4x cheaper than bpf_ktime_get_ns. */
static __always_inline __u32 hp_now(void)
{
	return (__u32)(bpf_ktime_get_coarse_ns() / 1000000000ULL);
}

/* hp_ctx_now is hp_now for a stage: the packet's one clock read, shared by
 * every stage that asks (ct, lb, the forward stage, ...). The entry program
 * fills it (entry.h, hp_clock_now); a context it did not fill reads the
 * clock here. */
static __always_inline __u32 hp_ctx_now(struct hp_ctx *c)
{
	if (!c->now)
		c->now = hp_now();
	return c->now;
}

#endif /* HOTPATH_PIPELINE_H */
