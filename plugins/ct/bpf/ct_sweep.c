// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* CT garbage collection inside the kernel: one bpf_for_each_map_elem pass
 * over a CT map, run by the ct plugin with BPF_PROG_TEST_RUN. Each entry's
 * lifetime is checked and the entry deleted a few instructions apart, so an
 * entry the datapath refreshes during the pass stays (the window is
 * nanoseconds instead of the two syscalls of a userspace re-check). Faster
 * than batch lookups from userspace on these machines: see make bench. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "lib/abi.h"

/* Replaced at load time by ct4 or ct_any4. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1);
	__type(key, struct hp_ct_tuple);
	__type(value, struct hp_ct_entry);
} sweep_ct SEC(".maps");

/* The test-run context: now in, counts out. */
struct hp_sweep_args {
	__u32 now;
	__u32 pad;
	__u64 scanned;
	__u64 deleted;
};

static long sweep_one(void *map, struct hp_ct_tuple *key, struct hp_ct_entry *e, struct hp_sweep_args *a)
{
	a->scanned++;
	if (e->lifetime < a->now && bpf_map_delete_elem(map, key) == 0)
		a->deleted++;
	return 0;
}

SEC("syscall")
int hp_ct_sweep(struct hp_sweep_args *ctx)
{
	struct hp_sweep_args a = { .now = ctx->now };

	bpf_for_each_map_elem(&sweep_ct, sweep_one, &a, 0);
	ctx->scanned = a.scanned;
	ctx->deleted = a.deleted;
	return 0;
}

char __license[] SEC("license") = "Dual BSD/GPL";
