// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Conntrack stage (slot ct), owned by the ct plugin.
 *
 * A connection first seen at a TCX ingress hook (sent by the endpoint behind
 * that device) is tracked as OUT, one first seen at an egress hook as IN, as
 * Cilium's CT_EGRESS / CT_INGRESS. A packet matches its entry either in the
 * original direction (same tuple and flag) or as a reply (reversed tuple, the
 * opposite flag: the entry the other hook created). */
#include "lib/ct.h"

static __always_inline void *ct_map(__u8 proto)
{
	return proto == IPPROTO_TCP ? (void *)&ct4 : (void *)&ct_any4;
}

SEC("tc")
int hp_ct(struct __sk_buff *skb)
{
	struct hp_ct_tuple key;
	struct hp_ct_entry *e;
	struct hp_ctx *c;
	__u8 flag;
	int reply = 0;
	__u32 now;
	void *map;

	hp_stage_enter(skb, c);
	/* Non-first fragments and untracked protocols have no ports. */
	if (!(c->parse & HP_P_L4))
		return hp_next(skb, c, HP_SLOT_CT);

	map = ct_map(c->proto);
	flag = c->dir == HP_DIR_INGRESS ? HP_TUPLE_F_OUT : HP_TUPLE_F_IN;
	ct_tuple_fill(&key, c, flag);
	e = bpf_map_lookup_elem(map, &key);
	if (!e) {
		ct_tuple_reverse(&key, c, flag ^ HP_TUPLE_F_IN);
		e = bpf_map_lookup_elem(map, &key);
		reply = 1;
	}
	now = hp_now();
	if (e) {
		/* A tuple reused through another service (a client port reused
		 * for a new VIP landing on the same backend) must reverse-NAT to
		 * the new VIP: in the original direction, the lb stage's
		 * translation of this packet wins over the entry's. */
		if (!reply && c->svc_id && (e->rev_nat_index != c->rev_nat_index ||
					    e->backend_id != c->backend_id)) {
			e->rev_nat_index = c->rev_nat_index;
			e->backend_id = c->backend_id;
		}
		ct_refresh(e, c, reply, now);
		c->ct_status = reply ? HP_CT_REPLY : HP_CT_ESTABLISHED;
		c->rev_nat_index = e->rev_nat_index;
		if (!c->backend_id)
			c->backend_id = e->backend_id;
		return hp_next(skb, c, HP_SLOT_CT);
	}

	ct_tuple_fill(&key, c, flag);
	c->ct_status = HP_CT_NEW;
	if (ct_create(map, &key, c, now) < 0) {
		/* Another CPU may have created it first: refresh that one. */
		e = bpf_map_lookup_elem(map, &key);
		if (e) {
			ct_refresh(e, c, 0, now);
			c->ct_status = HP_CT_ESTABLISHED;
		} else {
			c->reason = HP_R_CT_CREATE_FAILED;
		}
	}
	return hp_next(skb, c, HP_SLOT_CT);
}

char __license[] SEC("license") = "Dual BSD/GPL";
