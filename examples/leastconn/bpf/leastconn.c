// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* leastconn: backend selection by least active connections, in the
 * lb-select slot (the contract is in lib/lb.h). For a service whose
 * algorithm is "vendor" it picks, among the backends in the service's
 * lb4_slots, the one with the fewest active connections; every other service
 * is handed to lb_select_builtin, so Maglev and random services keep working
 * while this plugin holds the slot.
 *
 * Active connections per backend live in the plugin's private map
 * lc_active. The plugin's control loop rewrites it from the CT maps every
 * refresh; between refreshes the stage bumps the count of the backend it
 * picks, so a burst of new connections spreads instead of all landing on
 * the backend that was least loaded at the last refresh. */
#include "lib/lb.h"

/* Slots visited per selection. Backends of equal weight take one slot
 * each; a service with more slots is chosen among its first LC_MAX_SLOTS. */
#define LC_MAX_SLOTS 256

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HP_LB_BACKENDS);
	__type(key, __u32);   /* backend id */
	__type(value, __u64); /* active connections */
} lc_active SEC(".maps");

static __always_inline __u64 lc_count(__u32 id)
{
	__u64 *n = bpf_map_lookup_elem(&lc_active, &id);

	return n ? *n : 0;
}

static __always_inline void lc_bump(__u32 id)
{
	__u64 one = 1, *n;

	n = bpf_map_lookup_elem(&lc_active, &id);
	if (n) {
		__sync_fetch_and_add(n, 1);
		return;
	}
	/* Lost a race with another CPU's insert: add to its entry. */
	if (bpf_map_update_elem(&lc_active, &id, &one, BPF_NOEXIST)) {
		n = bpf_map_lookup_elem(&lc_active, &id);
		if (n)
			__sync_fetch_and_add(n, 1);
	}
}

/* lc_pick scans the service's slots from a random start, so that backends
 * with equal counts share new flows, and returns the least loaded one. */
static __always_inline __u32 lc_pick(const struct hp_lb4_service *svc)
{
	struct hp_lb4_slot_key k = {.svc_id = svc->svc_id};
	__u32 count = svc->count, start, best = 0, *id;
	__u64 best_n = ~0ULL, n;

	if (!count)
		return 0;
	if (count > LC_MAX_SLOTS)
		count = LC_MAX_SLOTS;
	start = bpf_get_prandom_u32() % count;
	for (__u32 i = 0; i < LC_MAX_SLOTS; i++) {
		if (i >= count)
			break;
		k.slot = (start + i) % count;
		id = bpf_map_lookup_elem(&lb4_slots, &k);
		if (!id || !*id)
			continue;
		n = lc_count(*id);
		if (n < best_n) {
			best_n = n;
			best = *id;
		}
	}
	return best;
}

SEC("tc")
int hp_leastconn_select(struct __sk_buff *skb)
{
	const struct hp_lb4_service *svc;
	struct hp_ctx *c;
	__u32 now;

	hp_stage_enter(skb, c);
	if (!(c->svc_flags & LB_SF_SELECT) || c->backend_id)
		return hp_next(skb, c, HP_SLOT_LB_SELECT);
	svc = &lb_scratch(c)->svc;
	now = hp_ctx_now(c);
	if (svc->algorithm != HP_LB_ALG_VENDOR) {
		c->backend_id = lb_select_builtin(c, svc, now);
	} else {
		/* ClientIP affinity first, as lb's own selection does. */
		if (c->svc_flags & LB_SF_AFFINITY) {
			c->backend_id = lb_pick_affinity(c, svc, now);
			if (c->backend_id)
				c->svc_flags |= LB_SF_AFF_HIT;
		}
		if (!c->backend_id) {
			c->backend_id = lc_pick(svc);
			if (c->backend_id)
				lc_bump(c->backend_id);
		}
	}
	if (!c->backend_id)
		return hp_drop(skb, c, HP_R_NO_BACKEND);
	return hp_next(skb, c, HP_SLOT_LB_SELECT);
}

char __license[] SEC("license") = "Dual BSD/GPL";
