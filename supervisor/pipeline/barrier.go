package pipeline

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// barrier waits for an RCU grace period from userspace. A syscall update of a
// map-in-map element makes the kernel wait, before returning, for every
// running non-sleepable BPF program to finish (maybe_wait_bpf_programs in
// kernel/bpf/syscall.c). tc programs run inside an RCU read section, so after
// the update no packet that read an older generation is still in a stage.
type barrier struct {
	outer *ebpf.Map
	inner *ebpf.Map
}

func newBarrier() (*barrier, error) {
	inner, err := ebpf.NewMap(&ebpf.MapSpec{Name: "hp_barrier_in", Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		return nil, fmt.Errorf("create barrier inner map: %w", err)
	}
	outer, err := ebpf.NewMap(&ebpf.MapSpec{
		Name: "hp_barrier", Type: ebpf.ArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 1,
		InnerMap: &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1},
	})
	if err != nil {
		inner.Close()
		return nil, fmt.Errorf("create barrier map: %w", err)
	}
	return &barrier{outer: outer, inner: inner}, nil
}

func (b *barrier) wait() error {
	if err := b.outer.Put(uint32(0), b.inner); err != nil {
		return fmt.Errorf("wait for grace period: %w", err)
	}
	return nil
}

func (b *barrier) close() {
	b.outer.Close()
	b.inner.Close()
}
