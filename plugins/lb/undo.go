package lb

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
)

// undoLog holds the inverse of every map write of one commit, run newest
// first when a later write fails.
type undoLog struct {
	steps  []func() error
	closer []func()
}

func (u *undoLog) push(f func() error) { u.steps = append(u.steps, f) }

// run takes every write back; a step that fails is reported, the rest still run.
func (u *undoLog) run() error {
	var errs []error
	for i := len(u.steps) - 1; i >= 0; i-- {
		errs = append(errs, ignoreMissing(u.steps[i]()))
	}
	u.steps = nil
	return errors.Join(errs...)
}

// done forgets the inverses: the commit succeeded.
func (u *undoLog) done() { u.steps = nil }

// drop releases what the inverses held on to.
func (u *undoLog) drop() {
	for _, c := range u.closer {
		c()
	}
}

// undoSlot records how to restore slot key: its old backend id, or no entry.
func (s *Store) undoSlot(u *undoLog, key abi.LB4SlotKey) error {
	var prev uint32
	switch err := s.maps.Slots.Lookup(key, &prev); {
	case err == nil:
		u.push(func() error { return s.maps.Slots.Put(key, prev) })
	case errors.Is(err, ebpf.ErrKeyNotExist):
		u.push(func() error { return s.maps.Slots.Delete(key) })
	default:
		return fmt.Errorf("read slot %d: %w", key.Slot, err)
	}
	return nil
}
