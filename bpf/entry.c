// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Entry programs, owned by the supervisor and attached with TCX to every
 * device. They parse once, pin the packet to the active generation and enter
 * the first occupied slot of that generation's bank. */
#include "lib/entry.h"

static __always_inline int hp_entry(struct __sk_buff *skb, __u32 dir)
{
	__u32 zero = 0, bank;
	struct hp_config *cfg;
	struct hp_ctx *c;
	int ret;

	if (hp_entry_begin(skb, dir, &c, &ret))
		return ret;
	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return hp_finish(skb, c);
	/* Read the generation once; every later tail call of this packet uses
	 * c->gen, so a flip in the middle of the pipeline cannot mix banks. */
	c->gen = *(volatile __u32 *)&cfg->active_gen;
	bank = c->gen % HP_BANKS;
	c->mask = cfg->bank_mask[bank][dir & 1];
	/* One load per packet, one store per generation. */
	if (!cfg->bank_first_ns[bank])
		cfg->bank_first_ns[bank] = bpf_ktime_get_ns();
	return hp_next_from(skb, c, 0);
}

SEC("tc")
int hp_entry_ingress(struct __sk_buff *skb)
{
	return hp_entry(skb, HP_DIR_INGRESS);
}

SEC("tc")
int hp_entry_egress(struct __sk_buff *skb)
{
	return hp_entry(skb, HP_DIR_EGRESS);
}

char __license[] SEC("license") = "Dual BSD/GPL";
