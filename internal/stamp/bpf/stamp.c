// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Test stages for the atomicity check: two stages stamp the tag they were
 * loaded with into the packet context, and the check stage counts every
 * packet whose stamps disagree with each other or with the bank of the
 * generation the entry program chose (reason gen_mismatch). */
/* 96 of these programs are loaded at once and the test flips 100k times:
 * with direct jumps every insert would re-patch a call site in each of them.
 * The entry program in front of them still enters slots by direct jump. */
#define HP_TAIL_INDIRECT
#include "lib/pipeline.h"

/* tag % HP_BANKS is the bank the program was inserted into. */
volatile const __u32 stamp_tag = 0;
/* Iterations of an empty loop stage A runs after stamping. The negative
 * controls set it so a packet stays between A and B long enough for a write
 * that ignores the flip protocol to land there. */
volatile const __u32 stamp_spin = 0;

static long spin_one(__u32 i, void *data)
{
	return 0;
}

SEC("tc")
int hp_stamp_a(struct __sk_buff *skb)
{
	struct hp_ctx *c;

	hp_stage_enter(skb, c);
	hp_stamp(c, stamp_tag + 1); /* +1: 0 means "not stamped" */
	if (stamp_spin)
		bpf_loop(stamp_spin, spin_one, NULL, 0);
	return hp_next(skb, c, HP_SLOT_VENDOR_A);
}

SEC("tc")
int hp_stamp_b(struct __sk_buff *skb)
{
	struct hp_ctx *c;

	hp_stage_enter(skb, c);
	hp_stamp(c, stamp_tag + 1);
	return hp_next(skb, c, HP_SLOT_VENDOR_B);
}

SEC("tc")
int hp_check(struct __sk_buff *skb)
{
	struct hp_ctx *c;

	hp_stage_enter(skb, c);
	if (!c->stamp_first || c->stamp_first != c->stamp_last ||
	    (c->stamp_last - 1) % HP_BANKS != c->gen % HP_BANKS)
		c->reason = HP_R_GEN_MISMATCH;
	return hp_next(skb, c, HP_SLOT_CHECK);
}

char __license[] SEC("license") = "Dual BSD/GPL";
