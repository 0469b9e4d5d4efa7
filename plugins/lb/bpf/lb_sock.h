/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Socket-level load balancing: the lb plugin's private maps and the
 * translation its cgroup programs (lb_sock.c) share.
 *
 * A socket in the configured cgroup that connects (or, for UDP, sends
 * without connecting) to a VIP gets the backend's address at that moment, so
 * its packets leave the pod already addressed to the backend and the
 * per-packet lb stages find no service in them: nothing is translated twice.
 * Selection is lib/lb.h's lb_select_builtin, the code the lb-select stage
 * runs, on a context built from the socket:
 *   client  the socket's network namespace, as 0.x.y.z (the low 24 bits of
 *           its netns cookie). 0.0.0.0/8 is never a packet's source, so these
 *           keys share lb4_affinity with the per-packet path's client
 *           addresses without colliding; a pod's affinity holds across its
 *           sockets, as with Cilium's socket LB.
 *   sport   the low 16 bits of the socket cookie folded: the local port is
 *           not bound yet at connect time, and a per-socket value spreads a
 *           pod's connections over a Maglev table by its weights.
 * Services whose algorithm is a vendor's (HP_LB_ALG_VENDOR) are left alone:
 * their lb-select program runs per packet, which a cgroup hook cannot call
 * (and with a vendor lb-select in the slot, the plugin loads none of this).
 */
#ifndef HOTPATH_LB_SOCK_H
#define HOTPATH_LB_SOCK_H

#include "lib/lb.h"

/* From the libc headers, which a BPF object does not include. */
#define LB_AF_INET 2
#define LB_SOCK_STREAM 1
#define LB_SOCK_DGRAM 2
#define LB_ENOMEM 12
#define LB_ECONNREFUSED 111

#define LB_SOCK_MAP_SIZE (256 * 1024)

/* Key of lb4_sock_fwd (address, port: the VIP) and lb4_sock_rev (the
 * backend): one socket, one peer. TCP sockets keep theirs in lb4_sock_peer
 * instead. */
struct lb_sock_key {
	__u64 cookie;  /* bpf_get_socket_cookie */
	__u32 address; /* network order */
	__u16 port;    /* network order */
	__u16 pad;
};

/* lb4_sock_fwd value: the backend a socket was given for a VIP, so that an
 * unconnected UDP socket's datagrams, and a UDP socket connected again, keep
 * it as long as it lives (what CT_SERVICE does for the per-packet path). */
struct lb_sock_fwd {
	__u32 backend_id;
	__u32 svc_id;
};

/* lb4_sock_rev value: the VIP a socket's backend answers as. */
struct lb_sock_rev {
	__u32 address;
	__u16 port;
	__u16 rev_nat_index;
};

/* Counters of lb4_sock_stats, read by the plugin's metrics. */
enum lb_sock_stat {
	LB_SOCK_CONNECT = 0, /* connect4 translated */
	LB_SOCK_SENDMSG = 1, /* sendmsg4 translated */
	LB_SOCK_REFUSED = 2, /* service without backends: ECONNREFUSED */
	LB_SOCK_REVERSE = 3, /* recvmsg4 / getpeername4 gave the VIP back */
	LB_SOCK_STATS = 4,
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB_SOCK_MAP_SIZE);
	__type(key, struct lb_sock_key);
	__type(value, struct lb_sock_fwd);
} lb4_sock_fwd SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB_SOCK_MAP_SIZE);
	__type(key, struct lb_sock_key);
	__type(value, struct lb_sock_rev);
} lb4_sock_rev SEC(".maps");

/* lb4_sock_peer value: a connected TCP socket's backend and the VIP it
 * answers as, kept on the socket itself. It lives exactly as long as the
 * socket: no churn of other connections can evict it, as it can evict an
 * entry of the lb4_sock_rev LRU (256 Ki connections later, a minute at this
 * VM's connection rate, getpeername would show the backend), and connect()
 * costs no LRU insert. UDP keeps lb4_sock_rev: an unconnected socket talks
 * to many VIPs. */
struct lb_sock_peer {
	__u32 backend;      /* network order */
	__u16 backend_port; /* network order */
	__u16 pad;
	struct lb_sock_rev rev;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct lb_sock_peer);
} lb4_sock_peer SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LB_SOCK_STATS);
	__type(key, __u32);
	__type(value, __u64);
} lb4_sock_stats SEC(".maps");

static __always_inline void lb_sock_count(__u32 stat)
{
	__u64 *n = bpf_map_lookup_elem(&lb4_sock_stats, &stat);

	if (n)
		*n += 1;
}

/* lb_sock_known returns the live backend the socket already has for the
 * service, or 0. */
static __always_inline __u32 lb_sock_known(const struct lb_sock_key *fk, __u32 svc_id)
{
	struct lb_sock_fwd *f = bpf_map_lookup_elem(&lb4_sock_fwd, fk);
	__u32 id;

	if (!f || f->svc_id != svc_id)
		return 0;
	id = f->backend_id;
	return bpf_map_lookup_elem(&lb4_backends, &id) ? id : 0;
}

/* lb_sock_select runs the lb-select stage's selection for a socket and
 * records an affinity entry as lb-dnat does. */
static __always_inline __u32 lb_sock_select(struct bpf_sock_addr *ctx, const struct hp_lb4_service *svc,
					    __u64 cookie, __u8 proto)
{
	struct hp_lb4_affinity_key ak;
	struct hp_lb4_affinity av;
	struct hp_ctx c = {};
	__u32 id, now = hp_now();

	c.saddr = bpf_htonl((__u32)bpf_get_netns_cookie(ctx) & 0xffffff);
	c.daddr = ctx->user_ip4;
	c.sport = (__u16)(cookie ^ (cookie >> 16) ^ (cookie >> 32));
	c.dport = (__u16)ctx->user_port;
	c.proto = proto;
	c.dir = HP_DIR_INGRESS;
	c.svc_id = svc->svc_id;
	c.svc_flags = svc->flags & HP_LB_F_AFFINITY ? LB_SF_AFFINITY : 0;
	id = lb_select_builtin(&c, svc, now);
	if (id && (c.svc_flags & (LB_SF_AFFINITY | LB_SF_AFF_HIT)) == LB_SF_AFFINITY) {
		ak.client = c.saddr;
		ak.svc_id = svc->svc_id;
		av.backend_id = id;
		av.last_used = now;
		bpf_map_update_elem(&lb4_affinity, &ak, &av, BPF_ANY);
	}
	return id;
}

/* lb_sock_set_peer records on a TCP socket the backend it is pointed at
 * and the VIP it answers as. */
static __always_inline int lb_sock_set_peer(struct bpf_sock_addr *ctx, const struct hp_lb4_backend *be,
					    const struct lb_sock_rev *rev)
{
	struct lb_sock_peer *p = bpf_sk_storage_get(&lb4_sock_peer, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);

	if (!p)
		return -1;
	p->backend = be->address;
	p->backend_port = be->port;
	p->rev = *rev;
	return 0;
}

/* lb_sock_remember_udp records for a UDP socket (fk: its cookie and the
 * VIP) the VIP its backend answers as, and the backend it keeps for that
 * VIP. */
static __always_inline int lb_sock_remember_udp(const struct lb_sock_key *fk, __u32 id, __u32 svc_id,
						const struct hp_lb4_backend *be, const struct lb_sock_rev *rev)
{
	struct lb_sock_key rk = {.cookie = fk->cookie, .address = be->address, .port = be->port};
	struct lb_sock_fwd fwd = {.backend_id = id, .svc_id = svc_id};

	if (bpf_map_update_elem(&lb4_sock_rev, &rk, rev, BPF_ANY) < 0)
		return -1;
	bpf_map_update_elem(&lb4_sock_fwd, fk, &fwd, BPF_ANY);
	return 0;
}

/* lb_sock_peer_rev is the VIP a TCP socket's peer answers as, when the
 * socket holds one for that peer. */
static __always_inline struct lb_sock_rev *lb_sock_peer_rev(struct bpf_sock_addr *ctx)
{
	struct lb_sock_peer *p;

	if (ctx->type != LB_SOCK_STREAM)
		return 0;
	p = bpf_sk_storage_get(&lb4_sock_peer, ctx->sk, 0, 0);
	if (!p || p->backend != ctx->user_ip4 || p->backend_port != (__u16)ctx->user_port)
		return 0;
	return &p->rev;
}

/* lb_sock_xlate points a socket that addresses a VIP at a backend. It
 * returns 1 (go on) or 0 with ECONNREFUSED when the service has no backend,
 * as the per-packet path answers with an RST or port unreachable. */
static __always_inline int lb_sock_xlate(struct bpf_sock_addr *ctx, __u32 stat)
{
	struct hp_lb4_key key = {};
	struct lb_sock_key fk = {};
	struct lb_sock_rev rev;
	struct hp_lb4_service *svc;
	struct hp_lb4_backend *be;
	__u64 cookie;
	__u8 proto;
	__u32 id;

	if (ctx->user_family != LB_AF_INET)
		return 1;
	if (ctx->type == LB_SOCK_STREAM)
		proto = IPPROTO_TCP;
	else if (ctx->type == LB_SOCK_DGRAM)
		proto = IPPROTO_UDP;
	else
		return 1;
	key.address = ctx->user_ip4;
	key.dport = (__u16)ctx->user_port;
	key.proto = proto;
	svc = bpf_map_lookup_elem(&lb4_services, &key);
	if (!svc || svc->algorithm == HP_LB_ALG_VENDOR)
		return 1;
	cookie = bpf_get_socket_cookie(ctx);
	fk.cookie = cookie;
	fk.address = key.address;
	fk.port = key.dport;
	/* Only a UDP socket comes back with the same VIP (unconnected sends,
	 * connecting again): a TCP socket connects once and keeps its backend
	 * as its peer, so it costs no lb4_sock_fwd lookup or update, an LRU
	 * insert (~1.5 us on the lab VM) per connection saved. */
	id = proto == IPPROTO_UDP ? lb_sock_known(&fk, svc->svc_id) : 0;
	if (!id)
		id = lb_sock_select(ctx, svc, cookie, proto);
	be = id ? bpf_map_lookup_elem(&lb4_backends, &id) : 0;
	if (!be) {
		lb_sock_count(LB_SOCK_REFUSED);
		bpf_set_retval(-LB_ECONNREFUSED);
		return 0;
	}
	rev.address = key.address;
	rev.port = key.dport;
	rev.rev_nat_index = svc->rev_nat_index;
	/* Without the reverse entry the application would see the backend's
	 * address: refuse rather than translate half-way. */
	if ((proto == IPPROTO_TCP ? lb_sock_set_peer(ctx, be, &rev)
				  : lb_sock_remember_udp(&fk, id, svc->svc_id, be, &rev)) < 0) {
		bpf_set_retval(-LB_ENOMEM);
		return 0;
	}
	ctx->user_ip4 = be->address;
	ctx->user_port = be->port;
	lb_sock_count(stat);
	return 1;
}

/* lb_sock_reverse shows the application the VIP where the kernel has the
 * backend: the source of a received datagram, the peer of a socket. */
static __always_inline int lb_sock_reverse(struct bpf_sock_addr *ctx)
{
	struct lb_sock_key rk = {};
	struct lb_sock_rev *rev;

	if (ctx->user_family != LB_AF_INET)
		return 1;
	/* A TCP socket holds its own; the LRU serves UDP, and TCP sockets
	 * connected by an lb build from before lb4_sock_peer. */
	rev = lb_sock_peer_rev(ctx);
	if (!rev) {
		rk.cookie = bpf_get_socket_cookie(ctx);
		rk.address = ctx->user_ip4;
		rk.port = (__u16)ctx->user_port;
		rev = bpf_map_lookup_elem(&lb4_sock_rev, &rk);
	}
	if (!rev)
		return 1;
	ctx->user_ip4 = rev->address;
	ctx->user_port = rev->port;
	lb_sock_count(LB_SOCK_REVERSE);
	return 1;
}

#endif /* HOTPATH_LB_SOCK_H */
