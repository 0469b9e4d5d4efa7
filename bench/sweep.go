package bench

import (
	"fmt"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/plugins/ct"
)

// sweeper times the ct plugin's in-kernel GC pass (plugins/ct.Sweeper) to
// compare with ct.Pass.
type sweeper struct {
	s *ct.Sweeper
}

func newSweeper(m *ebpf.Map) (*sweeper, error) {
	s, err := ct.NewSweeper(m)
	if err != nil {
		return nil, fmt.Errorf("load sweep program: %w", err)
	}
	return &sweeper{s: s}, nil
}

// sweep runs one pass and returns its wall time (syscall included) and the
// number of entries it deleted.
func (s *sweeper) sweep() (time.Duration, int, error) {
	start := time.Now()
	res, err := s.s.Pass(ctmap.Now())
	d := time.Since(start)
	if err != nil {
		return 0, 0, err
	}
	return d, res.Deleted, nil
}

func (s *sweeper) close() { s.s.Close() }
