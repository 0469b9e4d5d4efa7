// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Entry programs and the forward stage, owned by the supervisor. The entry
 * programs are attached with TCX to every device: they parse once, pin the
 * packet to the active generation and enter the first occupied slot of that
 * generation's bank. The forward stage sits in the forward slot of every bank
 * the supervisor builds.
 *
 * One pass per node: a packet runs the pipeline at the ingress hook where it
 * enters the node. The forward stage, last before the verdict, marks a packet
 * that goes on through this node (HP_MARK_SEEN) so the egress hook of the
 * device it leaves by lets it go without a second pass; where the next hop is
 * a local pod or a known neighbour it redirects the packet there itself
 * (bpf_redirect_peer / bpf_redirect_neigh), skipping the kernel's forwarding
 * path. The egress pipeline serves only what entered through no hotpath
 * hook: traffic the node itself originates, and answers a stage built and
 * sent back where the packet came from. docs/datapath-hooks.md says why. */
#include "lib/entry.h"
#include "lib/fib.h"

/* Kinds of device in fwd_devs, written by the supervisor for each of its
 * devices (core/entry mirrors them). A device not in the map is never a
 * redirect target: the kernel forwards to it. */
enum fwd_kind {
	FWD_KIND_PEER = 1,  /* veth whose peer is in another namespace (a pod) */
	FWD_KIND_NEIGH = 2, /* any other device the supervisor attached to */
};

/* What the forward stage did, per CPU (core/entry names them). */
enum fwd_stat {
	FWD_S_PEER = 0,          /* redirected into a pod (bpf_redirect_peer) */
	FWD_S_NEIGH = 1,         /* redirected out of a device (bpf_redirect_neigh) */
	FWD_S_NOT_FWDED = 2,     /* not forwarded: for this node (or no route), the kernel's */
	FWD_S_STAGE = 3,         /* a stage had already chosen where it goes */
	FWD_S_TURNED = 4,        /* a stage's answer sent back the way it came */
	FWD_S_OFF = 5,           /* direct redirects off: the kernel forwards */
	FWD_S_NO_ROUTE = 6,      /* FIB lookup refused (unreachable, blackhole, forwarding off, ...) */
	FWD_S_NO_NEIGH = 7,      /* next hop's neighbour unresolved: the kernel resolves it */
	FWD_S_FRAG_NEEDED = 8,   /* too big for the next hop: the kernel fragments or answers */
	FWD_S_TTL = 9,           /* TTL expires here: the kernel answers */
	FWD_S_UNMANAGED = 10,    /* next hop is a device without hotpath */
	FWD_S_EGRESS_SEEN = 11,  /* egress hook: already processed at ingress, passed */
	FWD_STATS = 12,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);   /* ifindex */
	__type(value, __u32); /* enum fwd_kind */
} fwd_devs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FWD_STATS);
	__type(key, __u32);
	__type(value, __u64);
} fwd_stats SEC(".maps");

/* Routes with an MTU of their own (`ip route ... mtu N`): the kernel's
 * forwarding honours them, bpf_fib_lookup does not (only locked ones), so
 * the supervisor mirrors them here and a packet too big for one is left to
 * the kernel, which answers with fragmentation needed or fragments it. */
struct fwd_mtu_key {
	__u32 prefixlen;
	__u32 addr; /* network order */
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__type(key, struct fwd_mtu_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} fwd_mtu SEC(".maps");

/* The smallest MTU in fwd_mtu (0: none), so most packets skip the trie. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} fwd_min_mtu SEC(".maps");

/* Next hops remembered per (source, destination, device in, TOS,
 * protocol), so an established flow costs one hash lookup instead of a FIB
 * lookup per packet (~4x dearer, measured in the lab). An entry serves while
 * its epoch is the current one (the supervisor moves it on every route,
 * neighbour, address or link change it hears of) and within the second it
 * was looked up in (the packet's hp_ctx_now, which ct and lb read too), which
 * bounds what a change it did not hear of (a learnt path MTU, a supervisor
 * that is down) can cost to under a second. */
struct fwd_hop_key {
	__u32 saddr;
	__u32 daddr;
	__u32 ifindex;
	__u8 tos;
	__u8 proto;
	__u16 pad;
};

struct fwd_hop {
	__u64 born;  /* hp_ctx_now (coarse seconds) when looked up */
	__u32 epoch; /* fwd_route.epoch then */
	__u32 ifindex;
	__u32 kind;  /* enum fwd_kind */
	__u32 mtu;   /* the route's, and fwd_mtu's where smaller */
	__u8 dmac[ETH_ALEN];
	__u8 smac[ETH_ALEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct fwd_hop_key);
	__type(value, struct fwd_hop);
} fwd_hops SEC(".maps");

/* Written by the supervisor (core/entry RouteState). off: remember nothing,
 * set while the node has routing rules of its own (ip rule), which may
 * route on what the key leaves out (marks, ports, uid). */
struct fwd_route {
	__u32 epoch;
	__u32 off;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fwd_route);
} fwd_route SEC(".maps");

static __always_inline void fwd_stat(__u32 k)
{
	__u64 *v = bpf_map_lookup_elem(&fwd_stats, &k);

	if (v)
		*v += 1;
}

static __always_inline void fwd_seen(struct __sk_buff *skb, int seen)
{
	if (seen)
		skb->mark |= HP_MARK_SEEN;
	else
		skb->mark &= ~HP_MARK_SEEN;
}

static __always_inline int hp_entry(struct __sk_buff *skb, __u32 dir)
{
	__u32 zero = 0, bank;
	struct hp_config *cfg;
	struct hp_ctx *c;
	int ret;

	if (hp_entry_begin(skb, dir, &c, &ret)) {
		/* Passed without a pipeline (not IPv4): at ingress, marked like
		 * any packet the forward stage passes, so it is counted once. */
		if (dir == HP_DIR_INGRESS && ret == TC_ACT_OK) {
			cfg = bpf_map_lookup_elem(&config, &zero);
			if (cfg && (cfg->bank_mask[cfg->active_gen % HP_BANKS][0] & (1u << HP_SLOT_FORWARD)))
				fwd_seen(skb, 1);
		}
		return ret;
	}
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
	/* Only this node's forward stage decides the mark: whatever a packet
	 * brings in (a decapsulated packet keeps its outer packet's) is dropped. */
	fwd_seen(skb, 0);
	return hp_entry(skb, HP_DIR_INGRESS);
}

SEC("tc")
int hp_entry_egress(struct __sk_buff *skb)
{
	/* Processed where it entered this node: nothing more to do, and the
	 * mark goes no further than this node. */
	if (skb->mark & HP_MARK_SEEN) {
		fwd_seen(skb, 0);
		fwd_stat(FWD_S_EGRESS_SEEN);
		return TC_ACT_OK;
	}
	return hp_entry(skb, HP_DIR_EGRESS);
}

static __always_inline int fwd_enabled(void)
{
	__u32 zero = 0;
	struct hp_config *cfg = bpf_map_lookup_elem(&config, &zero);

	return cfg && (*(volatile __u32 *)&cfg->flags & HP_CFG_DIRECT_REDIRECT);
}

/* fwd_chosen: a stage set where the packet goes (tunnel, masquerade, an
 * answer such as a reject or fragmentation needed). */
static __always_inline int fwd_chosen(struct __sk_buff *skb, struct hp_ctx *c)
{
	if (c->verdict == HP_V_REDIRECT && c->redirect_ifindex == c->ifindex) {
		/* An answer sent back out of the device the packet came in by
		 * leaves like traffic the node originates: the egress pipeline
		 * translates it for the flow it answers (lb-revnat, ...). */
		fwd_stat(FWD_S_TURNED);
		fwd_seen(skb, 0);
		return HP_SLOT_FORWARD + 1;
	}
	fwd_stat(FWD_S_STAGE);
	fwd_seen(skb, c->verdict != HP_V_REDIRECT_PEER);
	return HP_SLOT_FORWARD + 1;
}

/* fwd_pass leaves the packet to the kernel, counted under why; the egress
 * hook of the device it leaves by skips it. */
static __always_inline int fwd_pass(struct __sk_buff *skb, __u32 why)
{
	fwd_stat(why);
	fwd_seen(skb, 1);
	return HP_SLOT_FORWARD + 1;
}

/* fwd_mtu_of is the MTU of a route towards ip's destination that
 * bpf_fib_lookup does not check (fwd_mtu), 0 when there is none. The floor in
 * fwd_min_mtu spares most packets the trie: len no bigger than it fits any. */
static __always_inline __u32 fwd_mtu_of(const struct iphdr *ip, __u32 len)
{
	struct fwd_mtu_key k = {.prefixlen = 32, .addr = ip->daddr};
	__u32 zero = 0, *min, *mtu;

	min = bpf_map_lookup_elem(&fwd_min_mtu, &zero);
	if (!min || !*min || len <= *min)
		return 0;
	mtu = bpf_map_lookup_elem(&fwd_mtu, &k);
	return mtu ? *mtu : 0;
}

/* fwd_hop_cached is the remembered hop of k, when it is still good. */
static __always_inline struct fwd_hop *fwd_hop_cached(const struct fwd_hop_key *k, struct fwd_route *rt, __u32 now)
{
	struct fwd_hop *h;

	if (!rt || rt->off)
		return NULL;
	h = bpf_map_lookup_elem(&fwd_hops, k);
	if (!h || h->epoch != rt->epoch || h->born != now)
		return NULL;
	return h;
}

/* fwd_resolve finds the next hop of the packet whose header is ip: from
 * fwd_hops, or from the FIB (and then remembered). It returns a forward
 * stage result (enum fwd_stat) for a packet left to the kernel, or -1 with
 * *out filled for a packet this stage sends on itself. */
static __always_inline int fwd_resolve(struct __sk_buff *skb, struct hp_ctx *c, const struct iphdr *ip, struct fwd_hop *out)
{
	struct fwd_hop_key k = {.saddr = ip->saddr, .daddr = ip->daddr, .ifindex = c->ifindex,
				.tos = ip->tos, .proto = ip->protocol};
	__u32 now = hp_ctx_now(c), zero = 0, *kind, mtu, rmtu, len;
	struct fwd_route *rt = bpf_map_lookup_elem(&fwd_route, &zero);
	struct fwd_hop *h = fwd_hop_cached(&k, rt, now);
	struct bpf_fib_lookup p;

	if (h) {
		if (hp_fwd_len(skb, c, ip) > h->mtu)
			return FWD_S_FRAG_NEEDED;
		*out = *h;
		return -1;
	}
	switch (hp_fib_route(skb, c, ip, &p, 0)) {
	case BPF_FIB_LKUP_RET_SUCCESS:
		break;
	case BPF_FIB_LKUP_RET_NOT_FWDED:
		return FWD_S_NOT_FWDED;
	case BPF_FIB_LKUP_RET_NO_NEIGH:
		return FWD_S_NO_NEIGH;
	case BPF_FIB_LKUP_RET_FRAG_NEEDED:
		return FWD_S_FRAG_NEEDED;
	default:
		return FWD_S_NO_ROUTE;
	}
	len = hp_fwd_len(skb, c, ip);
	rmtu = fwd_mtu_of(ip, len);
	if (rmtu && len > rmtu)
		return FWD_S_FRAG_NEEDED;
	kind = bpf_map_lookup_elem(&fwd_devs, &p.ifindex);
	if (!kind)
		return FWD_S_UNMANAGED;
	__builtin_memset(out, 0, sizeof(*out));
	out->ifindex = p.ifindex;
	out->kind = *kind;
	__builtin_memcpy(out->dmac, p.dmac, ETH_ALEN);
	__builtin_memcpy(out->smac, p.smac, ETH_ALEN);
	if (!rt || rt->off)
		return -1;
	/* Remembered with the route's MTU, since the flow's next packet may
	 * be longer than this one; a route of fwd_mtu may lower it (asked
	 * with the largest length, so the floor does not hide it). */
	mtu = hp_route_mtu(skb, c, ip);
	if (!mtu)
		return -1;
	rmtu = fwd_mtu_of(ip, 0xffff);
	if (rmtu && rmtu < mtu)
		mtu = rmtu;
	out->mtu = mtu;
	out->epoch = rt->epoch;
	out->born = now;
	bpf_map_update_elem(&fwd_hops, &k, out, BPF_ANY);
	return -1;
}

static __always_inline int fwd_body(struct __sk_buff *skb, struct hp_ctx *c)
{
	struct fwd_hop hop;
	struct iphdr ip;
	int r;

	if (c->dir != HP_DIR_INGRESS)
		return HP_SLOT_FORWARD + 1;
	if (c->verdict != HP_V_PASS)
		return fwd_chosen(skb, c);
	if (!fwd_enabled())
		return fwd_pass(skb, FWD_S_OFF);
	/* The header as the stages left it (translated addresses). */
	if (hp_load(skb, c->l3_off, &ip, sizeof(ip)) < 0)
		return fwd_pass(skb, FWD_S_NO_ROUTE);
	r = fwd_resolve(skb, c, &ip, &hop);
	if (r == FWD_S_NOT_FWDED) {
		/* For this node (or no route at all): the kernel delivers or
		 * answers it, and what it sends leaves as local traffic. */
		fwd_stat(FWD_S_NOT_FWDED);
		fwd_seen(skb, 0);
		return HP_SLOT_FORWARD + 1;
	}
	if (r >= 0)
		return fwd_pass(skb, r);
	if (ip.ttl <= 1)
		return fwd_pass(skb, FWD_S_TTL);
	if (hp_ttl_dec(skb, c, &ip) < 0)
		return hp_stop(c, HP_R_STAGE_DROP);
	c->redirect_ifindex = hop.ifindex;
	if (hop.kind == FWD_KIND_PEER) {
		/* Straight into the pod's namespace: as if the node's end of
		 * the veth had sent it, so the pod sees the same frame. */
		if (hp_set_macs(skb, hop.dmac, hop.smac) < 0)
			return hp_stop(c, HP_R_STAGE_DROP);
		c->verdict = HP_V_REDIRECT_PEER;
		fwd_stat(FWD_S_PEER);
		fwd_seen(skb, 0);
		return HP_SLOT_FORWARD + 1;
	}
	c->verdict = HP_V_REDIRECT_NEIGH;
	fwd_stat(FWD_S_NEIGH);
	fwd_seen(skb, 1);
	return HP_SLOT_FORWARD + 1;
}

SEC("tc")
int hp_forward(struct __sk_buff *skb)
{
	struct hp_ctx *c;

	hp_stage_enter(skb, c);
	return hp_stage_exit(skb, c, fwd_body(skb, c));
}

char __license[] SEC("license") = "Dual BSD/GPL";
