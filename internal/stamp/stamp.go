package stamp

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
)

// Set is one loaded set of stamping stages: A and B stamp Tag, Check counts
// mismatches. Tag % abi.Banks must be the bank the set goes into.
type Set struct {
	Tag   uint32
	A, B  *ebpf.Program
	Check *ebpf.Program
}

// Load loads a set tagged tag against the shared maps.
func Load(maps map[string]*ebpf.Map, tag uint32) (*Set, error) {
	return LoadSlow(maps, tag, 0)
}

// LoadSlow loads a set whose stage A spins spin loop iterations after
// stamping, so each packet lingers between two stages.
func LoadSlow(maps map[string]*ebpf.Map, tag, spin uint32) (*Set, error) {
	spec, err := loadStamp()
	if err != nil {
		return nil, fmt.Errorf("load stamp spec: %w", err)
	}
	if err := spec.Variables["stamp_tag"].Set(tag); err != nil {
		return nil, fmt.Errorf("set stamp tag: %w", err)
	}
	if err := spec.Variables["stamp_spin"].Set(spin); err != nil {
		return nil, fmt.Errorf("set stamp spin: %w", err)
	}
	var objs stampPrograms
	if err := spec.LoadAndAssign(&objs, &ebpf.CollectionOptions{MapReplacements: maps}); err != nil {
		return nil, fmt.Errorf("load stamp stages: %w", err)
	}
	return &Set{Tag: tag, A: objs.HpStampA, B: objs.HpStampB, Check: objs.HpCheck}, nil
}

// Slots places the set in its pipeline slots.
func (s *Set) Slots() map[abi.Slot]*ebpf.Program {
	return map[abi.Slot]*ebpf.Program{
		abi.AbiHpSlotHP_SLOT_VENDOR_A: s.A,
		abi.AbiHpSlotHP_SLOT_VENDOR_B: s.B,
		abi.AbiHpSlotHP_SLOT_CHECK:    s.Check,
	}
}

// Close releases the programs.
func (s *Set) Close() {
	s.A.Close()
	s.B.Close()
	s.Check.Close()
}
