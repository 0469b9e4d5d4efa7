// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Policy stage (slot policy), owned by the policy plugin: Kubernetes
 * NetworkPolicy on security identities.
 *
 * The pipeline runs once per node, at the hook where a packet enters it: at
 * a TCX ingress hook the egress policy of a source pod of this node and the
 * ingress policy of a destination pod of this node apply; at an egress hook
 * (traffic the node originates) the destination's ingress policy. Every packet
 * of a flow's original direction is checked (CT NEW and ESTABLISHED), so a rule change reaches established
 * flows at their next packet; replies and related ICMP errors pass on CT. */
#include <linux/in.h>
#include "lib/pipeline.h"

/* Verdict counters per endpoint: index ep_id * 4 + verdict * 2 + policy dir. */
enum policy_verdict {
	POLICY_ALLOW = 0,
	POLICY_DENY = 1,
};

#define POLICY_MAX_EP 4096

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, POLICY_MAX_EP * 4);
	__type(key, __u32);
	__type(value, struct hp_metric);
} policy_verdicts SEC(".maps");

static __always_inline void policy_count(struct hp_ctx *c, __u16 ep, __u32 verdict, __u32 pdir)
{
	__u32 key = ((__u32)ep % POLICY_MAX_EP) * 4 + verdict * 2 + pdir;
	struct hp_metric *m = bpf_map_lookup_elem(&policy_verdicts, &key);

	if (m) {
		m->packets++;
		m->bytes += c->len;
	}
}

static __always_inline struct hp_ipcache_val *ipcache_lookup(__u32 addr)
{
	struct hp_ipcache_key k = { .prefixlen = 32, .addr = addr };

	return bpf_map_lookup_elem(&ipcache, &k);
}

/* policy_allowed looks the packet up in the rule table of local identity
 * `local` for direction pdir: by the peer's label identity, by its CIDR
 * identity, and by the any-peer wildcard. Returns 1 when a rule allows it. */
static __always_inline int policy_allowed(void *rules, struct hp_ctx *c, __u32 local,
					  struct hp_ipcache_val *peer, __u32 pdir)
{
	struct hp_policy_key k = {
		.prefixlen = 96, .local_id = local, .dir = pdir, .proto = c->proto,
	};

	/* Only TCP, UDP and SCTP have ports in NetworkPolicy; an untracked ICMP
	 * error or a later fragment without ports matches port-less rules. */
	if ((c->parse & (HP_P_L4 | HP_P_FRAG)) &&
	    (c->proto == IPPROTO_TCP || c->proto == IPPROTO_UDP || c->proto == IPPROTO_SCTP))
		k.port = c->dport;
	k.peer_id = peer ? peer->sec_id : HP_ID_WORLD;
	if (bpf_map_lookup_elem(rules, &k))
		return 1;
	k.peer_id = peer ? peer->cidr_id : HP_ID_WORLD;
	if (bpf_map_lookup_elem(rules, &k))
		return 1;
	k.peer_id = HP_ID_ANY;
	return bpf_map_lookup_elem(rules, &k) != 0;
}

/* policy_judge applies the rules of local endpoint `local` in direction
 * pdir: 0 to go on, HP_STOP when the packet is denied. */
static __always_inline int policy_judge(void *rules, struct hp_ctx *c, struct hp_ipcache_val *local,
					struct hp_ipcache_val *peer, __u32 pdir)
{
	struct hp_policy_key mk = { .prefixlen = 72, .peer_id = HP_ID_SELECTED };

	mk.local_id = local->sec_id;
	mk.dir = pdir;
	if (!bpf_map_lookup_elem(rules, &mk))
		return 0; /* not selected for this direction: open */
	if (policy_allowed(rules, c, local->sec_id, peer, pdir)) {
		policy_count(c, local->ep_id, POLICY_ALLOW, pdir);
		if (hp_monitoring(HP_MON_POLICY))
			hp_emit(c, HP_EV_POLICY);
		return 0;
	}
	policy_count(c, local->ep_id, POLICY_DENY, pdir);
	hp_stop(c, HP_R_POLICY_DENIED);
	if (hp_monitoring(HP_MON_POLICY))
		hp_emit(c, HP_EV_POLICY);
	return HP_STOP;
}

/* The pipeline runs once per node, where a packet enters it: at an ingress
 * hook both ends are judged here, the egress policy of a source pod of this
 * node and the ingress policy of a destination pod of this node. At an
 * egress hook (traffic the node originates) only the destination's. */
static __always_inline int policy_body(struct hp_ctx *c)
{
	struct hp_ipcache_val *src, *dst;
	__u32 zero = 0;
	void *rules;

	if (!(c->parse & HP_P_IPV4))
		return HP_SLOT_POLICY + 1;
	src = ipcache_lookup(c->saddr);
	dst = ipcache_lookup(c->daddr);
	c->src_sec_id = src ? src->sec_id : HP_ID_WORLD;
	c->dst_sec_id = dst ? dst->sec_id : HP_ID_WORLD;
	if (c->ct_status == HP_CT_REPLY || c->ct_status == HP_CT_RELATED)
		return HP_SLOT_POLICY + 1;
	if ((!src || !src->ep_id || c->dir != HP_DIR_INGRESS) && (!dst || !dst->ep_id))
		return HP_SLOT_POLICY + 1; /* no pod of this node at either end */
	rules = bpf_map_lookup_elem(&policy, &zero);
	if (!rules)
		return HP_SLOT_POLICY + 1; /* no policy table installed yet */
	if (c->dir == HP_DIR_INGRESS && src && src->ep_id &&
	    policy_judge(rules, c, src, dst, HP_POL_EGRESS) < 0)
		return HP_STOP;
	if (dst && dst->ep_id && policy_judge(rules, c, dst, src, HP_POL_INGRESS) < 0)
		return HP_STOP;
	return HP_SLOT_POLICY + 1;
}

SEC("tc")
int hp_policy(struct __sk_buff *skb)
{
	struct hp_ctx *c;

	hp_stage_enter(skb, c);
	return hp_stage_exit(skb, c, policy_body(c));
}

char __license[] SEC("license") = "Dual BSD/GPL";
