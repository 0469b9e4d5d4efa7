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

// undoTable records how to put back service id's current Maglev table (or
// remove the one a commit adds): it holds the old inner map open until the
// commit ends, so the table survives being swapped out.
func (s *Store) undoTable(u *undoLog, id uint32) error {
	var inner uint32
	err := s.maps.Maglev.Lookup(id, &inner)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		u.push(func() error { return s.maps.Maglev.Delete(id) })
		return nil
	}
	if err != nil {
		return fmt.Errorf("read maglev table of service %d: %w", id, err)
	}
	old, err := ebpf.NewMapFromID(ebpf.MapID(inner))
	if err != nil {
		return fmt.Errorf("open maglev table of service %d: %w", id, err)
	}
	u.closer = append(u.closer, func() { old.Close() })
	u.push(func() error { return s.maps.Maglev.Put(id, old) })
	return nil
}
