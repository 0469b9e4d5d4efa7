// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Conntrack stage (slot ct), owned by the ct plugin.
 *
 * A connection first seen at a TCX ingress hook (sent by the endpoint behind
 * that device) is tracked as OUT, one first seen at an egress hook as IN, as
 * Cilium's CT_EGRESS / CT_INGRESS. A packet matches its entry either in the
 * original direction (same tuple and flag) or as a reply (reversed tuple, the
 * opposite flag: the entry the other hook created). */
#include "ct_stage.h"

SEC("tc")
int hp_ct(struct __sk_buff *skb)
{
	struct hp_ctx *c;

	hp_stage_enter(skb, c);
	return hp_stage_exit(skb, c, ct_body(skb, c));
}

char __license[] SEC("license") = "Dual BSD/GPL";
