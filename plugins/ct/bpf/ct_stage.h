/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Body of the ct stage: ct.c wraps it in the tail-call program of slot ct,
 * mono.c runs it inline. */
#ifndef HOTPATH_CT_STAGE_H
#define HOTPATH_CT_STAGE_H

#include "lib/ct.h"

static __always_inline void *ct_map(__u8 proto)
{
	return proto == IPPROTO_TCP ? (void *)&ct4 : (void *)&ct_any4;
}

static __always_inline int ct_body(struct __sk_buff *skb, struct hp_ctx *c)
{
	struct hp_ct_tuple key;
	struct hp_ct_entry *e;
	__u8 flag;
	int reply = 0;
	__u32 now;
	void *map;

	/* Non-first fragments and untracked protocols have no ports. */
	if (!(c->parse & HP_P_L4))
		return HP_SLOT_CT + 1;

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
		return HP_SLOT_CT + 1;
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
	return HP_SLOT_CT + 1;
}

#endif /* HOTPATH_CT_STAGE_H */
