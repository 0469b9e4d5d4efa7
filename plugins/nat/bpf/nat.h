/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Masquerade helpers of the nat plugin: configuration, private maps, port
 * allocation. nat.c holds the two stage programs. */
#ifndef HOTPATH_NAT_H
#define HOTPATH_NAT_H

#include <stddef.h>
#include "lib/pipeline.h"
#include "lib/parse.h"

#define NAT_CIDRS 16
#define NAT_SKIPS 4096 /* bound on skips over excluded ports per allocation */

/* Set by the plugin at load time from its config (see plugins/nat/load.go). */
volatile const __u32 nat_ifindex = 0;    /* the masquerade device */
volatile const __u32 nat_addr = 0;       /* masquerade address, network order */
volatile const __u32 nat_port_min = 32768; /* host order, inclusive */
volatile const __u32 nat_port_max = 60999;
volatile const __u32 nat_tries = 128;    /* ports probed for one new flow */
volatile const __u32 nat_cluster_n = 0;
volatile const __u32 nat_cluster_net[NAT_CIDRS] = {};  /* network order */
volatile const __u32 nat_cluster_mask[NAT_CIDRS] = {};
volatile const __u32 nat_exclude_n = 0;
volatile const __u32 nat_exclude_net[NAT_CIDRS] = {};
volatile const __u32 nat_exclude_mask[NAT_CIDRS] = {};

/* Private maps, pinned by the plugin under plugins/nat/maps so that every
 * generation's programs and every instance of the plugin share them. */

/* Ports never handed out, one bit each: the node's listening ports and the
 * NodePort range. The plugin keeps it current. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} nat_excl SEC(".maps");

enum nat_stat {
	NAT_S_ALLOC = 0,     /* ports handed out to new flows */
	NAT_S_COLLISION = 1, /* probes that found a port taken by a live flow */
	NAT_S_EXHAUSTED = 2, /* new flows dropped: no free port */
	NAT_S_RECLAIMED = 3, /* ports taken over from flows whose CT entry ended */
	NAT_S_REPAIRED = 4,  /* reply entries re-created after LRU eviction */
	NAT_S_ICMP_ERROR = 5, /* ICMP errors translated back to a pod */
	NAT_STATS = 8,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NAT_STATS);
	__type(key, __u32);
	__type(value, __u64);
} nat_stats SEC(".maps");

/* Exhaustion signal to the plugin, which purges orphaned mappings at once.
 * At most one record is pending: a storm of drops wakes the plugin once. */
struct nat_signal_rec {
	__u32 now;
	__u32 daddr;
	__u16 dport;
	__u8 proto;
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} nat_signal SEC(".maps");

static __always_inline void nat_stat(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&nat_stats, &idx);

	if (v)
		*v += n; /* per-CPU */
}

static __always_inline int nat_in(__u32 a, const volatile __u32 *net, const volatile __u32 *mask, __u32 n)
{
	/* A bounded loop, not unrolled: volatile reads defeat unrolling. */
	for (__u32 i = 0; i < NAT_CIDRS; i++) {
		if (i >= n)
			break;
		if ((a & mask[i]) == net[i])
			return 1;
	}
	return 0;
}

enum nat_skip {
	NAT_FREE = 0, /* the port may be handed out */
	NAT_NEXT = 1, /* excluded: try the next port */
	NAT_JUMP = 2, /* excluded with its whole bitmap word: leave the region */
};

/* nat_port_skip says whether port may be handed out. Excluded regions (the
 * NodePort range) fill whole bitmap words; a probe that meets one jumps to
 * a new place rather than walking to the region's end, where flows from all
 * over the region would otherwise pile up and probe each other's ports. */
static __always_inline int nat_port_skip(__u32 port)
{
	__u32 k = port >> 6;
	__u64 *w = bpf_map_lookup_elem(&nat_excl, &k);

	if (!w || !((*w >> (port & 63)) & 1))
		return NAT_FREE;
	return *w == ~0ULL ? NAT_JUMP : NAT_NEXT;
}

static __always_inline __u32 nat_mix(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

/* nat_flow_live tells whether the flow a mapping belongs to still has a
 * live CT entry: the one created where it left the node (IN at the egress
 * hook) or where it entered (OUT at the pod's ingress hook). A mapping lives
 * exactly as long as its flow, so a closed flow's port is free again once its
 * CT entry's close lifetime has passed, whether or not CT GC ran yet. */
static __always_inline int nat_flow_live(__u32 pod, __u16 pod_port, const struct hp_nat4_key *r, __u32 now)
{
	struct hp_ct_tuple t = {
		.daddr = r->saddr, .saddr = pod, .dport = r->sport, .sport = pod_port,
		.nexthdr = r->nexthdr, .flags = HP_TUPLE_F_IN,
	};
	void *map = r->nexthdr == IPPROTO_TCP ? (void *)&ct4 : (void *)&ct_any4;
	struct hp_ct_entry *e = bpf_map_lookup_elem(map, &t);

	if (e && e->lifetime >= now)
		return 1;
	t.flags = HP_TUPLE_F_OUT;
	e = bpf_map_lookup_elem(map, &t);
	return e && e->lifetime >= now;
}

/* nat_egress_key is the egress key of the flow a reply entry translates to. */
static __always_inline void nat_egress_key(struct hp_nat4_key *k, __u32 pod, __u16 pod_port, const struct hp_nat4_key *r)
{
	k->daddr = r->saddr;
	k->saddr = pod;
	k->dport = r->sport;
	k->sport = pod_port;
	k->nexthdr = r->nexthdr;
	k->dir = HP_NAT_EGRESS;
	k->pad = 0;
}

struct nat_alloc {
	struct hp_nat4_key rkey;   /* reply key; dport set per probe */
	struct hp_nat4_entry rval; /* the pod's address and port */
	__u32 start;
	__u32 size;
	__u32 now;
	__u32 off;   /* next port to look at: start + off */
	__u32 tries; /* ports probed so far; excluded ones are skipped, not probed */
	__u32 limit; /* tries allowed: nat_tries, at most the range's size */
	__u32 jumps;
	__u32 collisions;
	__u16 port; /* network order; 0: none found */
	__u8 reclaimed;
	__u8 pad;
};

/* nat_probe tries one port for a new flow. A free port is taken by an
 * atomic insert (BPF_NOEXIST). A taken port whose flow has ended is taken
 * over: claim is even while an entry is stable and odd while its owner
 * rewrites it; the compare-and-swap lets exactly one CPU take a dead
 * mapping over, and a CPU that sees it odd treats the port as taken. */
static long nat_probe(__u32 i, void *data)
{
	struct nat_alloc *a = data;
	struct hp_nat4_entry *old;
	struct hp_nat4_key ek;
	__u32 port, claim;

	if (a->tries >= a->limit || !a->size)
		return 1;
	port = nat_port_min + (a->start + a->off) % a->size;
	switch (nat_port_skip(port)) {
	case NAT_NEXT:
		a->off++;
		return 0;
	case NAT_JUMP:
		a->off = nat_mix(a->start ^ (++a->jumps << 20) ^ a->off);
		return 0;
	}
	a->off++;
	a->tries++;
	a->rkey.dport = bpf_htons(port);
	if (!bpf_map_update_elem(&nat4, &a->rkey, &a->rval, BPF_NOEXIST)) {
		a->port = a->rkey.dport;
		return 1;
	}
	old = bpf_map_lookup_elem(&nat4, &a->rkey);
	if (old) {
		claim = old->claim;
		if (!(claim & 1) && !nat_flow_live(old->addr, old->port, &a->rkey, a->now) &&
		    __sync_val_compare_and_swap(&old->claim, claim, claim + 1) == claim) {
			/* The dead flow's egress entry would hand out this port
			 * again if the flow came back: forget it. */
			nat_egress_key(&ek, old->addr, old->port, &a->rkey);
			bpf_map_delete_elem(&nat4, &ek);
			old->addr = a->rval.addr;
			old->port = a->rval.port;
			old->created = a->rval.created;
			__sync_fetch_and_add(&old->claim, 1);
			a->port = a->rkey.dport;
			a->reclaimed = 1;
			return 1;
		}
	}
	a->collisions++;
	return 0;
}

/* nat_alloc finds a port for the flow of c: the first probe at a port
 * derived from the flow's hash, then the following ones, nat_tries at most;
 * excluded ports are skipped without counting as a try. It returns the port
 * in network order, or 0 when every probe failed. */
static __always_inline __u16 nat_alloc(struct hp_ctx *c, __u32 now)
{
	struct nat_alloc a = {};
	__u32 h;

	a.rkey.daddr = nat_addr;
	a.rkey.saddr = c->daddr;
	a.rkey.sport = c->dport;
	a.rkey.nexthdr = c->proto;
	a.rkey.dir = HP_NAT_INGRESS;
	a.rval.addr = c->saddr;
	a.rval.port = c->sport;
	a.rval.created = now;
	a.now = now;
	a.size = nat_port_max - nat_port_min + 1;
	h = nat_mix(c->saddr ^ nat_mix(c->daddr ^ nat_mix(((__u32)c->sport << 16 | c->dport) ^ c->proto)));
	a.start = a.size ? h % a.size : 0;
	a.limit = nat_tries < a.size ? nat_tries : a.size;
	/* Iterations beyond the tries are skips of excluded ports. */
	bpf_loop(nat_tries + NAT_SKIPS, nat_probe, &a, 0);
	if (a.collisions)
		nat_stat(NAT_S_COLLISION, a.collisions);
	if (a.port) {
		nat_stat(NAT_S_ALLOC, 1);
		if (a.reclaimed)
			nat_stat(NAT_S_RECLAIMED, 1);
	}
	return a.port;
}

static __always_inline void nat_signal_exhausted(const struct hp_ctx *c, __u32 now)
{
	struct nat_signal_rec rec = {
		.now = now, .daddr = c->daddr, .dport = c->dport, .proto = c->proto,
	};

	if (bpf_ringbuf_query(&nat_signal, BPF_RB_AVAIL_DATA) == 0)
		bpf_ringbuf_output(&nat_signal, &rec, sizeof(rec), 0);
}

/* Offsets of the checksum and of the source / destination port (or ICMP
 * echo identifier) inside the L4 header. */
static __always_inline int nat_l4_offsets(__u8 proto, __u32 *csum, __u32 *sport, __u32 *dport)
{
	switch (proto) {
	case IPPROTO_TCP:
		*csum = 16, *sport = 0, *dport = 2;
		return 0;
	case IPPROTO_UDP:
		*csum = 6, *sport = 0, *dport = 2;
		return 0;
	case IPPROTO_ICMP:
		*csum = 2, *sport = 4, *dport = 4;
		return 0;
	}
	return -1;
}

/* nat_rewrite replaces the source (src) or destination address and port of
 * the packet, fixing the IP and L4 checksums incrementally. */
static __always_inline int nat_rewrite(struct __sk_buff *skb, const struct hp_ctx *c, int src,
				       __u32 from_a, __u32 to_a, __u16 from_p, __u16 to_p)
{
	__u32 csum, sport, dport, poff, aoff;
	__u64 l4flags = 0;

	if (nat_l4_offsets(c->proto, &csum, &sport, &dport) < 0)
		return -1;
	csum += c->l4_off;
	poff = c->l4_off + (src ? sport : dport);
	aoff = c->l3_off + (src ? offsetof(struct iphdr, saddr) : offsetof(struct iphdr, daddr));
	if (c->proto == IPPROTO_UDP)
		l4flags = BPF_F_MARK_MANGLED_0; /* a zero UDP checksum stays "none" */
	/* ICMP has no pseudo header: only the identifier is in its checksum. */
	if (c->proto != IPPROTO_ICMP &&
	    bpf_l4_csum_replace(skb, csum, from_a, to_a, l4flags | BPF_F_PSEUDO_HDR | sizeof(to_a)) < 0)
		return -1;
	if (from_p != to_p && bpf_l4_csum_replace(skb, csum, from_p, to_p, l4flags | sizeof(to_p)) < 0)
		return -1;
	if (bpf_l3_csum_replace(skb, c->l3_off + offsetof(struct iphdr, check), from_a, to_a, sizeof(to_a)) < 0)
		return -1;
	if (bpf_skb_store_bytes(skb, aoff, &to_a, sizeof(to_a), 0) < 0)
		return -1;
	if (from_p != to_p && bpf_skb_store_bytes(skb, poff, &to_p, sizeof(to_p), 0) < 0)
		return -1;
	return 0;
}

static __always_inline int nat_icmp_type(struct __sk_buff *skb, const struct hp_ctx *c)
{
	__u8 type;

	if (bpf_skb_load_bytes(skb, c->l4_off, &type, 1) < 0)
		return -1;
	return type;
}

#endif /* HOTPATH_NAT_H */
