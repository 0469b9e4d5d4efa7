// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* An example vendor plugin's backend selection (slot lb-select): every new
 * flow of a service goes to the backend in the service's first slot. It
 * shows the contract a selection plugin follows (lib/lb.h): run only when lb
 * set LB_SF_SELECT, leave the choice in c->backend_id, or 0 when there is
 * none (lb-dnat then rejects the packet as kube-proxy does). lb-dnat does
 * the rest. */
#include "lib/lb.h"

SEC("tc")
int hp_first_select(struct __sk_buff *skb)
{
	struct hp_lb4_slot_key k;
	struct hp_ctx *c;
	__u32 *id;

	hp_stage_enter(skb, c);
	if (!(c->svc_flags & LB_SF_SELECT) || c->backend_id)
		return hp_next(skb, c, HP_SLOT_LB_SELECT);
	k.svc_id = c->svc_id;
	k.slot = 0;
	id = bpf_map_lookup_elem(&lb4_slots, &k);
	if (id)
		c->backend_id = *id;
	return hp_next(skb, c, HP_SLOT_LB_SELECT);
}

char __license[] SEC("license") = "Dual BSD/GPL";
