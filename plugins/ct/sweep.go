package ct

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// Sweeper runs a GC pass over one CT map inside the kernel (bpf/ct_sweep.c).
type Sweeper struct {
	prog *ebpf.Program
	m    *ebpf.Map
}

// sweepArgs mirrors struct hp_sweep_args.
type sweepArgs struct {
	Now     uint32
	Pad     uint32
	Scanned uint64
	Deleted uint64
}

// NewSweeper loads the sweep program bound to m.
func NewSweeper(m *ebpf.Map) (*Sweeper, error) {
	spec, err := loadCtsweep()
	if err != nil {
		return nil, fmt.Errorf("load sweep spec: %w", err)
	}
	// The placeholder is sized 1; the real map's size is what it is.
	spec.Maps["sweep_ct"].MaxEntries = m.MaxEntries()
	// It reads only the lifetime, which every layout has at one offset.
	spec.Maps["sweep_ct"].ValueSize = m.ValueSize()
	var objs ctsweepPrograms
	opts := &ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{"sweep_ct": m}}
	if err := spec.LoadAndAssign(&objs, opts); err != nil {
		return nil, fmt.Errorf("load sweep program: %w", err)
	}
	return &Sweeper{prog: objs.HpCtSweep, m: m}, nil
}

// Pass deletes every entry of the map whose lifetime is before now.
func (s *Sweeper) Pass(now uint32) (PassResult, error) {
	args := sweepArgs{Now: now}
	if _, err := s.prog.Run(&ebpf.RunOptions{Context: args, ContextOut: &args}); err != nil {
		return PassResult{}, fmt.Errorf("run sweep: %w", err)
	}
	return PassResult{Scanned: int(args.Scanned), Deleted: int(args.Deleted), MaxEntries: s.m.MaxEntries()}, nil
}

// Close releases the program.
func (s *Sweeper) Close() { s.prog.Close() }
