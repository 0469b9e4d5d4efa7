/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared maps. Every object that includes this header declares the same maps;
 * the supervisor creates and pins them from the abi object, and every other
 * object is loaded with its maps replaced by those pins. */
#ifndef HOTPATH_MAPS_H
#define HOTPATH_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "abi.h"

#define HP_CT4_SIZE     (512 * 1024)
#define HP_CT_ANY4_SIZE (256 * 1024)

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, HP_CALLS_SIZE);
	__type(key, __u32);
	__type(value, __u32);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HP_DIRS);
	__type(key, __u32);
	__type(value, struct hp_ctx);
} pctx SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct hp_config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HP_METRICS_SIZE);
	__type(key, __u32);
	__type(value, struct hp_metric);
} metrics SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, HP_CT4_SIZE);
	__type(key, struct hp_ct_tuple);
	__type(value, struct hp_ct_entry);
} ct4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, HP_CT_ANY4_SIZE);
	__type(key, struct hp_ct_tuple);
	__type(value, struct hp_ct_entry);
} ct_any4 SEC(".maps");

/* Datagrams in flight being fragmented; LRU so a lost last fragment costs
 * nothing. Cilium's default size. */
#define HP_FRAG4_SIZE 8192

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, HP_FRAG4_SIZE);
	__type(key, struct hp_frag4_key);
	__type(value, struct hp_frag4_ports);
} frag4 SEC(".maps");

#define HP_LB_SERVICES 65536
#define HP_LB_BACKENDS 65536

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HP_LB_SERVICES);
	__type(key, struct hp_lb4_key);
	__type(value, struct hp_lb4_service);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} lb4_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HP_LB_BACKENDS);
	__type(key, __u32);
	__type(value, struct hp_lb4_backend);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} lb4_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HP_LB_BACKENDS);
	__type(key, struct hp_lb4_slot_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} lb4_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HP_LB_SERVICES);
	__type(key, __u16);
	__type(value, struct hp_lb4_revnat);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} lb4_revnat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 128 * 1024);
	__type(key, struct hp_lb4_affinity_key);
	__type(value, struct hp_lb4_affinity);
} lb4_affinity SEC(".maps");

/* Every service's Maglev table, at the chunk offset its lb4_services value
 * names (abi.h). 2^20 chunks of 16 ids (64 MiB) hold 1000 tables of the
 * default M=16381 with room to spare for rewrites. Mmapable: the lb plugin
 * writes a table into unused chunks with one memory copy. */
#define HP_LB_MAGLEV_CHUNKS (1024 * 1024)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HP_LB_MAGLEV_CHUNKS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct hp_maglev_chunk);
} lb4_maglev SEC(".maps");

/* Masquerade mappings (nat plugin), two entries per flow. LRU: a full map
 * evicts the least recently used mappings rather than refuse new flows; the
 * nat stage re-creates a reply entry that eviction took from a live flow. */
#define HP_NAT4_SIZE (256 * 1024)

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, HP_NAT4_SIZE);
	__type(key, struct hp_nat4_key);
	__type(value, struct hp_nat4_entry);
} nat4 SEC(".maps");

/* Policy plugin: identities of addresses and the rule table (abi.h). */
#define HP_IPCACHE_SIZE (64 * 1024)
#define HP_POLICY_SIZE (256 * 1024)

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, HP_IPCACHE_SIZE);
	__type(key, struct hp_ipcache_key);
	__type(value, struct hp_ipcache_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} ipcache SEC(".maps");

struct hp_policy_inner {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, HP_POLICY_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	/* Sizes, not types: clang emits an inner map's struct types as
	 * forward declarations, which loaders cannot size. */
	__uint(key_size, sizeof(struct hp_policy_key));
	__uint(value_size, sizeof(struct hp_policy_val));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct hp_policy_inner);
} policy SEC(".maps");

/* Tunnel plugin: remote pod CIDRs and the nodes behind them (abi.h). */
#define HP_TUNNEL4_SIZE 16384

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, HP_TUNNEL4_SIZE);
	__type(key, struct hp_tunnel_key);
	__type(value, struct hp_tunnel_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} tunnel4 SEC(".maps");

#endif /* HOTPATH_MAPS_H */
