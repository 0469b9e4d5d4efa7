// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Load balancer stages (slots lb, lb-select, lb-dnat, lb-revnat), owned by the
 * lb plugin.
 *
 * A service is translated where its client's packets enter the node: at the
 * TCX ingress hook of the client's device. The first packet of a flow picks a
 * backend and leaves a CT_SERVICE entry (tuple to the VIP, flag SERVICE)
 * recording it; every later packet finds that entry and goes to the same
 * backend, whatever happened to the service's algorithm or table since. The
 * ct stage then tracks the translated tuple with the service's
 * rev_nat_index, so that replies, which match that entry as REPLY, get their
 * source turned back into the VIP by lb-revnat. See lib/lb.h for how the
 * stages hand over through the context. */
#include "lb_stages.h"

SEC("tc")
int hp_lb(struct __sk_buff *skb)
{
	struct hp_ctx *c;

	hp_stage_enter(skb, c);
	return hp_stage_exit(skb, c, lb_body(skb, c));
}

SEC("tc")
int hp_lb_select(struct __sk_buff *skb)
{
	struct hp_ctx *c;

	hp_stage_enter(skb, c);
	return hp_stage_exit(skb, c, lb_select_body(skb, c));
}

SEC("tc")
int hp_lb_dnat(struct __sk_buff *skb)
{
	struct hp_ctx *c;

	hp_stage_enter(skb, c);
	return hp_stage_exit(skb, c, lb_dnat_body(skb, c));
}

SEC("tc")
int hp_lb_revnat(struct __sk_buff *skb)
{
	struct hp_ctx *c;

	hp_stage_enter(skb, c);
	return hp_stage_exit(skb, c, lb_revnat_body(skb, c));
}

char __license[] SEC("license") = "Dual BSD/GPL";
