// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The pipeline's work as one program, for benchmarks only: the same parse,
 * lb, lb-select, lb-dnat, ct and lb-revnat bodies the stages run, back to
 * back, without tail calls or the generation read. The difference in
 * ns/packet between this and the staged pipeline is the cost of modularity. */
#include "lib/entry.h"
#include "../../../plugins/ct/bpf/ct_stage.h"
#include "../../../plugins/lb/bpf/lb_stages.h"

static __always_inline int hp_mono(struct __sk_buff *skb, __u32 dir)
{
	struct hp_ctx *c;
	int ret, r = 0;

	if (hp_entry_begin(skb, dir, &c, &ret))
		return ret;
	/* A body may skip slots by returning a later one, as in the pipeline. */
	if (r <= HP_SLOT_LB && (r = lb_body(skb, c)) < 0)
		goto out;
	if (r <= HP_SLOT_LB_SELECT && (r = lb_select_body(skb, c)) < 0)
		goto out;
	if (r <= HP_SLOT_LB_DNAT && (r = lb_dnat_body(skb, c)) < 0)
		goto out;
	if (r <= HP_SLOT_CT && (r = ct_body(skb, c)) < 0)
		goto out;
	if (r <= HP_SLOT_LB_REVNAT)
		lb_revnat_body(skb, c);
out:
	return hp_finish(skb, c);
}

SEC("tc")
int hp_mono_ingress(struct __sk_buff *skb)
{
	return hp_mono(skb, HP_DIR_INGRESS);
}

SEC("tc")
int hp_mono_egress(struct __sk_buff *skb)
{
	return hp_mono(skb, HP_DIR_EGRESS);
}

char __license[] SEC("license") = "Dual BSD/GPL";
