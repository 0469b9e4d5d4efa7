package bench

import (
	"fmt"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/plugins/ct"
)

// sweeper runs bpf/sweep.c: a whole GC pass inside the kernel, in one
// BPF_PROG_TEST_RUN of a syscall program, to compare with ct.Pass.
type sweeper struct {
	prog *ebpf.Program
}

// sweepArgs mirrors struct sweep_args in bpf/sweep.c.
type sweepArgs struct {
	Now     uint32
	Pad     uint32
	Scanned uint64
	Deleted uint64
}

func newSweeper(m *ebpf.Map) (*sweeper, error) {
	spec, err := loadSweep()
	if err != nil {
		return nil, fmt.Errorf("load sweep spec: %w", err)
	}
	var objs sweepPrograms
	opts := &ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{"sweep_ct": m}}
	if err := spec.LoadAndAssign(&objs, opts); err != nil {
		return nil, fmt.Errorf("load sweep program: %w", err)
	}
	return &sweeper{prog: objs.HpSweep}, nil
}

// sweep runs one pass and returns its wall time (syscall included) and the
// number of entries it deleted.
func (s *sweeper) sweep() (time.Duration, int, error) {
	args := sweepArgs{Now: ct.Now()}
	start := time.Now()
	_, err := s.prog.Run(&ebpf.RunOptions{Context: args, ContextOut: &args})
	d := time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("run sweep: %w", err)
	}
	return d, int(args.Deleted), nil
}

func (s *sweeper) close() { s.prog.Close() }
