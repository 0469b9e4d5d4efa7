// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* In-kernel CT sweep for the bench only: one bpf_for_each_map_elem pass over
 * a ct4-shaped map from a BPF_PROG_TYPE_SYSCALL program run with
 * BPF_PROG_TEST_RUN, deleting entries whose lifetime has passed. It is the
 * comparison point for plugins/ct.Pass (batch lookups from userspace). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "../../bpf/lib/abi.h"

/* Replaced at load time by the bench's 1Mi-entry map. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 20);
	__type(key, struct hp_ct_tuple);
	__type(value, struct hp_ct_entry);
} sweep_ct SEC(".maps");

/* The test-run context: now in, counts out. */
struct sweep_args {
	__u32 now;
	__u32 pad;
	__u64 scanned;
	__u64 deleted;
};

static long sweep_one(void *map, struct hp_ct_tuple *key, struct hp_ct_entry *e, struct sweep_args *a)
{
	a->scanned++;
	/* Check and delete are a few instructions apart instead of two
	 * syscalls, so the window in which the datapath could refresh the
	 * entry in between is tiny, but not zero. */
	if (e->lifetime < a->now && bpf_map_delete_elem(map, key) == 0)
		a->deleted++;
	return 0;
}

SEC("syscall")
int hp_sweep(struct sweep_args *ctx)
{
	struct sweep_args a = { .now = ctx->now };

	bpf_for_each_map_elem(&sweep_ct, sweep_one, &a, 0);
	ctx->scanned = a.scanned;
	ctx->deleted = a.deleted;
	return 0;
}

char __license[] SEC("license") = "Dual BSD/GPL";
