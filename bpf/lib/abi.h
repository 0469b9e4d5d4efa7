/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* hotpath pipeline ABI: the contract between the supervisor and every plugin.
 *
 * Anything in this file that changes layout or meaning bumps HP_ABI_VERSION; the
 * supervisor refuses a plugin built against another version.
 */
#ifndef HOTPATH_ABI_H
#define HOTPATH_ABI_H

#include <linux/types.h>

/* Constants are enums so bpf2go mirrors them into core/abi. */
enum hp_abi_const {
	HP_ABI_VERSION = 3, /* 3: lb4_maglev is one ARRAY of table chunks (hp_maglev_chunk) at per-service offsets, hp_lb4_service.maglev_offset; hp_ctx.hops and .skip in former padding; peer/neigh redirect verdicts, HP_MARK_SEEN and HP_CFG_DIRECT_REDIRECT; ct layout 2 (hp_ct_entry_v2). 2: context fields for ICMP errors, fragments, the slot and dst_sec_id; frag4, nat4, ipcache and policy maps; slot rev-snat before ct (later slots renumbered); versioned hp_event and monitor flags */
};

/* Pipeline slots, in the order a packet visits them. Vendor slots sit between
 * the core stages so an extension never needs a core change. */
enum hp_slot {
	HP_SLOT_PRE_LB = 0,     /* vendor */
	HP_SLOT_LB = 1,         /* service lookup, CT_SERVICE lookup */
	HP_SLOT_LB_SELECT = 2,  /* backend selection (lb or an algorithm plugin) */
	HP_SLOT_LB_DNAT = 3,    /* CT_SERVICE create, DNAT */
	/* Reverse SNAT of replies to masqueraded flows: before ct, so that
	 * ct, lb-revnat and policy see a reply as the reply of the pod's flow,
	 * never as a new connection to the node's address. */
	HP_SLOT_REV_SNAT = 4,
	HP_SLOT_CT = 5,         /* conntrack lookup / create */
	HP_SLOT_LB_REVNAT = 6,  /* reply path: reverse DNAT; acts only on a packet with a
				 * rev_nat_index, so ct passes over it for the rest */
	HP_SLOT_PRE_POLICY = 7, /* vendor */
	HP_SLOT_POLICY = 8,
	HP_SLOT_NAT = 9,        /* SNAT (masquerade) */
	HP_SLOT_POST_NAT = 10,  /* vendor */
	HP_SLOT_TUNNEL = 11,
	HP_SLOT_FORWARD = 12,
	HP_SLOT_VENDOR_A = 13,
	HP_SLOT_VENDOR_B = 14,
	HP_SLOT_VENDOR_C = 15,
	HP_SLOT_CHECK = 16,     /* diagnostics: last before the verdict */
	HP_SLOTS = 17,
};

/* Generations live in banks of one prog array: generation g uses indexes
 * [(g % HP_BANKS) * HP_SLOTS, +HP_SLOTS). A PROG_ARRAY cannot be the inner map
 * of a map-in-map, so a per-generation array would force every stage to be
 * reloaded against it; a bank lets an unchanged program be re-inserted. */
enum hp_bank_const {
	HP_BANKS = 16,
	HP_CALLS_SIZE = HP_BANKS * HP_SLOTS,
};

enum hp_dir {
	HP_DIR_INGRESS = 0, /* TCX ingress: the packet leaves the endpoint, enters the node */
	HP_DIR_EGRESS = 1,  /* TCX egress: the packet leaves the node towards the endpoint */
	HP_DIRS = 2,
};

/* Metric reasons: every packet is counted under exactly one, at the end of
 * its pipeline. FORWARD, the PASS_* reasons, FRAGMENT, UNSUPPORTED,
 * CT_CREATE_FAILED and ICMP_RELATED are not drops; REJECT answers the client
 * instead of forwarding. */
enum hp_reason {
	HP_R_FORWARD = 0,          /* pipeline ran, packet passed */
	HP_R_PASS_OTHER = 1,       /* not IPv4: passed untouched */
	HP_R_PARSE_ERROR = 2,      /* truncated or malformed header, dropped */
	HP_R_MISSED_TAIL_CALL = 3, /* an occupied slot could not be entered, dropped */
	HP_R_NO_CONTEXT = 4,       /* per-CPU context unavailable, dropped */
	HP_R_CT_CREATE_FAILED = 5, /* CT map update failed; packet still passed */
	HP_R_NO_BACKEND = 6,       /* service without backends, dropped */
	HP_R_POLICY_DENIED = 7,
	HP_R_GEN_MISMATCH = 8,     /* a packet saw stages of two generations */
	HP_R_FRAGMENT = 9,         /* IPv4 fragment, passed with the ports of its first fragment */
	HP_R_UNSUPPORTED = 10,     /* L4 the pipeline does not track, passed */
	HP_R_STAGE_DROP = 11,      /* a stage dropped for its own reason */
	HP_R_PASS_IPV6 = 12,       /* IPv6: passed untouched until it is supported */
	HP_R_PASS_VLAN = 13,       /* 802.1Q / 802.1ad tagged: passed untouched until supported */
	HP_R_FRAG_NOT_FOUND = 14,  /* non-first fragment whose first fragment was not seen, dropped */
	HP_R_REJECT = 15,          /* service without backends: TCP RST / ICMP port unreachable sent back */
	HP_R_ICMP_RELATED = 16,    /* ICMP error quoting a tracked flow, passed (translated back) */
	HP_R_NAT_EXHAUSTED = 17,   /* masquerade: no free port for a new flow, dropped */
	HP_R_FRAG_NEEDED = 18,     /* too big for the overlay with DF: ICMP fragmentation needed sent back (as REJECT) */
	HP_R_LAST = HP_R_FRAG_NEEDED, /* the highest reason in use: move it with every new one */
	HP_REASONS = 32,
};

/* Verdict a stage leaves in the context. */
enum hp_verdict {
	HP_V_PASS = 0,
	HP_V_DROP = 1,
	HP_V_REDIRECT = 2,       /* bpf_redirect to the egress of redirect_ifindex */
	HP_V_REDIRECT_PEER = 3,  /* bpf_redirect_peer: into the namespace of redirect_ifindex's veth peer */
	HP_V_REDIRECT_NEIGH = 4, /* bpf_redirect_neigh: out of redirect_ifindex, L2 filled by the kernel */
};

/* HP_MARK_SEEN: the skb->mark bit the forward stage sets on a packet that
 * ran the pipeline at an ingress hook and goes on through this node. The
 * egress entry program clears it and lets the packet go without a second
 * pass. A pod cannot set it: the mark is scrubbed when a packet crosses
 * from one network namespace to another (veth). */
enum hp_mark_const {
	HP_MARK_SEEN = 0x00100000,
};

/* hp_ctx.parse bits */
enum hp_parse_bit {
	HP_P_IPV4 = 0x01,
	HP_P_L4 = 0x02,       /* ports / ICMP id valid */
	HP_P_FRAG = 0x04,     /* an IPv4 fragment (first or later) */
	HP_P_FRAG_NOHDR = 0x08, /* a later fragment: ports come from the first one (frag4), no L4 header here */
	HP_P_ICMP_ERR = 0x10, /* ICMP error; the packet it quotes is in hp_ctx.inner_* (HP_P_L4 unset) */
};

/* hp_ctx.ct_status */
enum hp_ct_status {
	HP_CT_NONE = 0,
	HP_CT_NEW = 1,
	HP_CT_ESTABLISHED = 2, /* original direction of a known entry */
	HP_CT_REPLY = 3,       /* reply direction of a known entry */
	HP_CT_RELATED = 4,     /* ICMP error quoting a packet of a known entry */
};

/* The per-packet context: one entry per CPU and direction in the pctx map.
 * Written by the entry program, read and extended by stages. A tc program
 * cannot migrate CPU between tail calls, so per-CPU scratch is private to the
 * packet for the whole pipeline. Addresses and ports in network byte order. */
struct hp_ctx {
	__u32 gen;       /* generation the entry program chose; stages never re-read it */
	__u32 mask;      /* occupied slots of that generation's bank */
	__u32 ifindex;
	__u32 len;       /* skb->len at entry */
	__u32 saddr;
	__u32 daddr;
	__u16 sport;     /* ICMP echo: identifier on the requester's side */
	__u16 dport;
	__u8 dir;
	__u8 proto;
	__u8 tcp_flags;
	__u8 parse;
	__u16 l3_off;
	__u16 l4_off;
	/* stage results */
	__u8 verdict;
	__u8 reason;
	__u8 ct_status;
	__u8 svc_flags;
	__u16 rev_nat_index;
	__u8 slot;       /* slot running now (set before each tail call); HP_SLOTS: the entry program */
	__u8 hops;       /* tail calls this packet made so far (diagnostics, the bench); was padding */
	__u32 backend_id;
	__u32 svc_id;
	__u32 src_sec_id;
	__u32 redirect_ifindex;
	/* generation stamps: each stage that opts in writes its generation; the
	 * check slot compares them with gen. */
	__u32 stamp_first;
	__u32 stamp_last;
	/* Coarse monotonic seconds of this packet (hp_ctx_now): the entry
	 * program reads the clock (per CPU, once per tick), every stage reuses
	 * it, so a packet pays one read however many stages need it. 0: not
	 * read yet. In what was padding, so the layout is unchanged. */
	__u32 now;
	__u64 scratch[4]; /* free for the stage that owns the current slot */
	/* HP_P_ICMP_ERR: the quoted packet's tuple as that packet travelled (in
	 * the direction opposite to the error), and where its headers are. */
	__u32 inner_saddr;
	__u32 inner_daddr;
	__u16 inner_sport; /* ICMP echo: identifier placed as for an outer packet */
	__u16 inner_dport;
	__u8 inner_proto;
	__u8 inner_reply;  /* HP_CT_RELATED: 1 when the quoted packet went in its entry's original
			    * direction (the error travels back to the flow's originator) */
	__u16 inner_l3_off;
	__u16 inner_l4_off;
	/* Slots (bit = slot, vendor slots included, never check) this packet
	 * passes over without a tail call: a stage sets the bits of its own
	 * plugin's later slots that have nothing to do for the packet, and ct
	 * that of lb-revnat, whose contract (above) it is the last to decide.
	 * Skipping is only a saving: a stage must still do nothing wrong if
	 * entered. In what was padding, so the layout is unchanged. */
	__u16 skip;
	/* Identity of the destination, filled by the policy stage beside
	 * src_sec_id (0: no policy stage ran). In what was tail padding, so the
	 * size is unchanged. */
	__u32 dst_sec_id;
};

_Static_assert(__builtin_offsetof(struct hp_ctx, scratch) == 72, "hp_ctx.now took padding, not a new offset");

/* Conntrack: direction flags, as Cilium's TUPLE_F_*. */
enum hp_tuple_flag {
	HP_TUPLE_F_OUT = 0x0,
	HP_TUPLE_F_IN = 0x1,
	HP_TUPLE_F_RELATED = 0x2,
	HP_TUPLE_F_SERVICE = 0x4,
};

/* Key of ct4 / ct_any4: the tuple as the first packet carried it. */
struct hp_ct_tuple {
	__u32 daddr;
	__u32 saddr;
	__u16 dport;
	__u16 sport;
	__u8 nexthdr;
	__u8 flags;
	__u16 pad;
};

/* frag4: the first fragment of a datagram leaves its ports under the
 * datagram's identity, so later fragments (which carry no L4 header) get the
 * same verdict and translation. As Cilium's fragment map. */
struct hp_frag4_key {
	__u32 saddr;
	__u32 daddr;
	__u16 id;
	__u8 proto;
	__u8 pad;
};

struct hp_frag4_ports {
	__u16 sport;
	__u16 dport;
};

/* hp_ct_entry.flags */
enum hp_ct_flag {
	HP_CT_F_RX_CLOSING = 0x0001,
	HP_CT_F_TX_CLOSING = 0x0002,
	HP_CT_F_SEEN_NON_SYN = 0x0004,
	HP_CT_F_NODE_PORT = 0x0008,
	HP_CT_F_DSR = 0x0010,
};

struct hp_ct_entry {
	__u64 packets;        /* both directions */
	__u64 bytes;
	__u32 lifetime;       /* coarse monotonic seconds at which the entry expires */
	__u32 flags;          /* HP_CT_F_* (32 bits so it can be or-ed atomically) */
	__u16 rev_nat_index;
	__u8 tx_flags_seen;   /* TCP flags seen in the original direction */
	__u8 rx_flags_seen;   /* ... and in the reply direction */
	__u32 backend_id;
	__u32 src_sec_id;
	__u32 last_tx_report; /* coarse seconds of the last report per direction */
	__u32 last_rx_report;
	__u32 created;
};

/* Layout 2 of the ct4 / ct_any4 value: layout 1 (hp_ct_entry, whose fields
 * it repeats at the same offsets) plus reply-direction counters and the
 * time of the last packet. Programs that read only the fields of layout 1
 * serve both; the ct plugin's build declares which one it writes, and
 * `hotpath plugin upgrade` migrates the pinned maps between them. */
struct hp_ct_entry_v2 {
	__u64 packets;
	__u64 bytes;
	__u32 lifetime;
	__u32 flags;
	__u16 rev_nat_index;
	__u8 tx_flags_seen;
	__u8 rx_flags_seen;
	__u32 backend_id;
	__u32 src_sec_id;
	__u32 last_tx_report;
	__u32 last_rx_report;
	__u32 created;
	__u64 rx_packets;     /* reply direction only (packets counts both) */
	__u64 rx_bytes;
	__u32 last_seen;      /* coarse seconds of the last packet either way */
	__u32 pad2;
};
_Static_assert(__builtin_offsetof(struct hp_ct_entry_v2, created) == __builtin_offsetof(struct hp_ct_entry, created),
	       "layout 2 keeps the fields of layout 1 in place");

/* metrics: PERCPU_ARRAY indexed by hp_metric_key(reason, dir). An array rather
 * than a hash: the lookup is inlined by the verifier and can never be full. */
enum hp_metrics_const {
	HP_METRICS_SIZE = HP_REASONS * HP_DIRS,
};
struct hp_metric {
	__u64 packets;
	__u64 bytes;
};

/* config: one-slot ARRAY, mmapable so the supervisor flips the generation with
 * one aligned 4-byte store that a concurrent reader sees whole. */
struct hp_config {
	__u32 active_gen;
	__u32 abi_version;
	/* Occupied slots per bank and direction, written before the flip. A
	 * plugin declares the hooks each of its slots runs at, so a packet
	 * never enters a stage with nothing to do at its hook. */
	__u32 bank_mask[HP_BANKS][HP_DIRS];
	__u32 node_ip;
	__u32 flags;
	/* CLOCK_MONOTONIC ns of the first packet that entered each bank since the
	 * supervisor prepared it: flip-to-first-packet latency. */
	__u64 bank_first_ns[HP_BANKS];
};

/* Load balancer (lb plugin). */
enum hp_lb_algorithm {
	HP_LB_ALG_RANDOM = 1,
	HP_LB_ALG_MAGLEV = 2,
	HP_LB_ALG_VENDOR = 3, /* selection left entirely to the plugin in HP_SLOT_LB_SELECT */
};

/* hp_lb4_service.flags */
enum hp_lb_flag {
	HP_LB_F_AFFINITY = 0x01,
};

struct hp_lb4_key {
	__u32 address; /* VIP */
	__u16 dport;
	__u8 proto;
	__u8 pad;
};

struct hp_lb4_service {
	__u32 svc_id;
	__u16 count;            /* backends in lb4_slots */
	__u16 rev_nat_index;
	__u8 algorithm;         /* hp_lb_algorithm */
	__u8 flags;             /* HP_LB_F_* */
	__u16 pad;
	__u32 affinity_timeout; /* seconds */
	__u32 maglev_size;      /* M of the service's table */
	/* First lb4_maglev chunk of the service's table, 0: no table. A new
	 * table is written to unused chunks and then published by writing this
	 * value (offset and M together), so a packet reads one whole table. */
	__u32 maglev_offset;
};

/* lb4_maglev: all Maglev tables in one ARRAY of chunks of HP_MAGLEV_CHUNK
 * backend ids; a service's table of M ids starts at chunk maglev_offset and
 * fills ceil(M / HP_MAGLEV_CHUNK) chunks. Chunks rather than one id per
 * element: an ARRAY rounds values up to 8 bytes, and one syscall element
 * carries 16 ids. */
enum hp_maglev_const {
	HP_MAGLEV_CHUNK = 16,
};

struct hp_maglev_chunk {
	__u32 backend[HP_MAGLEV_CHUNK];
};

/* lb4_slots: (svc_id, slot) -> backend id; slot < count. Random selection reads it. */
struct hp_lb4_slot_key {
	__u32 svc_id;
	__u32 slot;
};

struct hp_lb4_backend {
	__u32 address;
	__u16 port;
	__u8 proto;
	__u8 flags;
	__u16 weight;
	__u16 pad;
};

struct hp_lb4_revnat {
	__u32 address;
	__u16 port;
	__u16 pad;
};

struct hp_lb4_affinity_key {
	__u32 client;
	__u32 svc_id;
};

struct hp_lb4_affinity {
	__u32 backend_id;
	__u32 last_used; /* coarse seconds */
};

/* nat4 (nat plugin): masquerade mappings, two entries per flow, keyed like a
 * CT tuple. HP_NAT_EGRESS: the pod's tuple as it leaves (pod -> remote) ->
 * the node address and port it leaves with. HP_NAT_INGRESS: the reply's
 * tuple as it arrives (remote -> node:port) -> the pod address and port. A
 * mapping lives as long as the CT entry of its flow. */
enum hp_nat_dir {
	HP_NAT_EGRESS = 0,
	HP_NAT_INGRESS = 1,
};

struct hp_nat4_key {
	__u32 daddr;
	__u32 saddr;
	__u16 dport;
	__u16 sport;
	__u8 nexthdr;
	__u8 dir; /* hp_nat_dir */
	__u16 pad;
};

struct hp_nat4_entry {
	__u32 addr;    /* translated address (network order) */
	__u16 port;    /* translated port or ICMP echo identifier (network order) */
	__u16 pad;
	__u32 created; /* coarse seconds */
	__u32 claim;   /* bumped by whoever takes over a dead mapping's port */
};

/* Events ring buffer record (`hotpath monitor`). Nothing is written unless
 * the supervisor set the matching HP_MON_* bit in hp_config.flags (it does
 * while a monitor of that type is connected), so an unwatched datapath pays
 * one load and a branch. A record starts with its own layout version. */
enum hp_event_const {
	HP_EVENT_VERSION = 1,
};

enum hp_event_type {
	HP_EV_DROP = 1,   /* a packet was dropped, any stage, any reason */
	HP_EV_TRACE = 2,  /* a packet ended its pipeline without being dropped */
	HP_EV_POLICY = 3, /* the policy stage judged a packet of a flow's original direction */
};

/* hp_config.flags bits */
enum hp_monitor_flag {
	HP_MON_DROP = 0x1,
	HP_MON_TRACE = 0x2,
	HP_MON_POLICY = 0x4,
};

/* hp_config.flags bits the supervisor sets from its own config. */
enum hp_config_flag {
	HP_CFG_DIRECT_REDIRECT = 0x100, /* the forward stage redirects (peer/neigh) instead of the kernel forwarding */
};

struct hp_event {
	__u8 version;   /* HP_EVENT_VERSION */
	__u8 type;      /* hp_event_type */
	__u8 reason;    /* hp_reason */
	__u8 dir;       /* hook */
	__u8 slot;      /* stage that decided; HP_SLOTS: the entry program */
	__u8 proto;
	__u8 verdict;   /* hp_verdict */
	__u8 ct_status;
	__u32 ifindex;
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u32 gen;
	__u32 src_id;   /* security identities, 0 when no policy stage ran */
	__u32 dst_id;
	__u32 len;
	__u64 ts_ns;    /* CLOCK_MONOTONIC */
};

/* Policy (policy plugin). Reserved identities; label identities start at
 * HP_ID_LABEL_MIN, CIDR identities at HP_ID_CIDR_MIN (as Cilium's local
 * CIDR identities). */
enum hp_identity {
	HP_ID_ANY = 0,            /* in a rule: every peer */
	HP_ID_WORLD = 2,          /* an address no ipcache entry covers */
	HP_ID_LABEL_MIN = 256,
	HP_ID_CIDR_MIN = 0x01000000,
	HP_ID_SELECTED = 0xffffffff, /* marker: the local identity is selected for that direction */
};

/* Direction of a policy rule (not of a hook). */
enum hp_policy_dir {
	HP_POL_INGRESS = 0,
	HP_POL_EGRESS = 1,
};

/* ipcache: LPM_TRIE of every known prefix. Local endpoints are /32 entries
 * with ep_id != 0. cidr_id is the identity of the longest policy prefix
 * covering the address without the endpoint's own /32 entry, so an ipBlock
 * selects endpoint addresses too. */
struct hp_ipcache_key {
	__u32 prefixlen;
	__u32 addr;
};

struct hp_ipcache_val {
	__u32 sec_id;
	__u32 cidr_id;
	__u16 ep_id;
	__u16 flags; /* hp_ipcache_flag */
};

/* hp_ipcache_val.flags: who wrote an entry, so a plugin that reconciles the
 * ipcache (policy, later tunnel) deletes only its own. */
enum hp_ipcache_flag {
	HP_IPCACHE_F_POLICY = 0x1,
};

/* policy: a one-slot ARRAY_OF_MAPS whose inner LPM_TRIE is the whole rule
 * table; replacing the inner map swaps every rule at once. A key's data is
 * (local, peer, dir, proto, port): prefixlen 72 covers local/peer/dir (any
 * protocol and port), 80 adds the protocol, 80+k the top k bits of the port
 * (big-endian), so a port range is a handful of prefixes. */
struct hp_policy_key {
	__u32 prefixlen;
	__u32 local_id;
	__u32 peer_id;
	__u8 dir;
	__u8 proto;
	__u16 port;
};

struct hp_policy_val {
	__u32 rule; /* index of the allowing rule, for the monitor; 0 for the marker */
};

/* Tunnel (tunnel plugin): remote pod CIDR -> the node that owns it. An
 * LPM_TRIE keyed by (prefixlen, address), both in the tunnel4 map. */
struct hp_tunnel_key {
	__u32 prefixlen;
	__u32 addr;   /* network order */
};

struct hp_tunnel_val {
	__u32 remote; /* underlay IPv4 address of the node, network order */
	__u32 vni;    /* VXLAN network identifier, host order */
};

#endif /* HOTPATH_ABI_H */
