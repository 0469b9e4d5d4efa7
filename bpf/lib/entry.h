/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The entry program's first half: context and parse. */
#ifndef HOTPATH_ENTRY_H
#define HOTPATH_ENTRY_H

#include "pipeline.h"
#include "parse.h"

/* The packet's clock (hp_ctx.now), read here once for every stage. The
 * clock helper is a call, a sequence-counter read and a 64-bit division:
 * 30-70 ns per packet in the lab (bpf_stats, iperf3), where the stages'
 * lookups are cheaper. CLOCK_MONOTONIC_COARSE only moves when jiffies do,
 * at a tick, and bpf_jiffies64 is inlined into one load; so each CPU keeps
 * the seconds it read with the jiffies it read them at and asks the clock
 * again only once the tick has moved on. The one difference from reading it
 * every time: a read in the microseconds between a tick's jiffies update and
 * its timekeeping update keeps the old second for that tick, a few ms late
 * at a second's boundary, no more than the coarse clock is anyway. */
struct hp_clock {
	__u64 jiffies;
	__u32 now;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hp_clock);
} hp_clock SEC(".maps");

static __always_inline __u32 hp_clock_now(void)
{
	__u32 zero = 0;
	struct hp_clock *k = bpf_map_lookup_elem(&hp_clock, &zero);
	__u64 j = bpf_jiffies64();

	if (!k)
		return hp_now();
	if (k->jiffies != j || !k->now) {
		k->now = hp_now();
		k->jiffies = j;
	}
	return k->now;
}

/* hp_entry_begin prepares the packet's context. It returns 0 with *cp set
 * when the packet goes on into the pipeline, or 1 with *ret holding the tc
 * verdict when it is finished already (no context, not IPv4, malformed, a
 * later fragment whose first was not seen). */
static __always_inline int hp_entry_begin(struct __sk_buff *skb, __u32 dir, struct hp_ctx **cp, int *ret)
{
	struct hp_ctx *c;
	int r;

	skb->cb[HP_CB_DIR] = dir;
	c = hp_ctx_get(dir);
	if (!c) {
		hp_count(HP_R_NO_CONTEXT, dir, skb->len);
		*ret = TC_ACT_SHOT;
		return 1;
	}
	__builtin_memset(c, 0, sizeof(*c));
	c->dir = dir;
	c->len = skb->len;
	c->ifindex = skb->ifindex;
	c->slot = HP_SLOTS; /* drops before the first stage are the entry program's */

	r = hp_parse(skb, c);
	if (r != HP_PARSE_OK) {
		/* Every packet that leaves here is counted under its reason. */
		switch (r) {
		case HP_PARSE_ERROR:
			*ret = hp_drop(skb, c, HP_R_PARSE_ERROR);
			return 1;
		case HP_PARSE_FRAG_NOT_FOUND:
			*ret = hp_drop(skb, c, HP_R_FRAG_NOT_FOUND);
			return 1;
		case HP_PARSE_IPV6:
			c->reason = HP_R_PASS_IPV6;
			break;
		case HP_PARSE_VLAN:
			c->reason = HP_R_PASS_VLAN;
			break;
		default:
			c->reason = HP_R_PASS_OTHER;
		}
		*ret = hp_finish(skb, c);
		return 1;
	}
	/* Only a packet that goes on to the stages needs the time. */
	c->now = hp_clock_now();
	*cp = c;
	return 0;
}

#endif /* HOTPATH_ENTRY_H */
