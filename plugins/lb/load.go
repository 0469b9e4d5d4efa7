package lb

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/pin"
)

// Slots the lb stages occupy, by name.
var (
	SlotLB     = abi.SlotName(abi.AbiHpSlotHP_SLOT_LB)
	SlotSelect = abi.SlotName(abi.AbiHpSlotHP_SLOT_LB_SELECT)
	SlotDNAT   = abi.SlotName(abi.AbiHpSlotHP_SLOT_LB_DNAT)
	SlotRevNat = abi.SlotName(abi.AbiHpSlotHP_SLOT_LB_REVNAT)
)

// AllSlots are the slots of a full lb plugin, in pipeline order.
var AllSlots = []string{SlotLB, SlotSelect, SlotDNAT, SlotRevNat}

var programOf = map[string]string{
	SlotLB:     lbProgHpLb,
	SlotSelect: lbProgHpLbSelect,
	SlotDNAT:   lbProgHpLbDnat,
	SlotRevNat: lbProgHpLbRevnat,
}

// Stages are loaded lb stage programs and their pins.
type Stages struct {
	Progs map[abi.Slot]*ebpf.Program
	Pins  map[string]string // slot name -> pin path
}

// Close drops this process's references; the pins keep the programs.
func (s *Stages) Close() {
	for _, p := range s.Progs {
		p.Close()
	}
}

// LoadStages loads the lb stages of slots against the shared maps pinned
// under l, with cfg's lifetimes and hash seed, and pins each under
// layout.Plugin("lb", gen)/<slot>.
func LoadStages(l pin.Layout, gen uint32, cfg Config, slots []string) (*Stages, error) {
	spec, err := loadLb()
	if err != nil {
		return nil, fmt.Errorf("load lb spec: %w", err)
	}
	consts := cfg.Lifetimes.Seconds()
	consts[lbVarLbHashSeed] = cfg.MaglevSeed
	consts[ctmap.AccountingVar] = ctmap.AccountingValue(cfg.Accounting)
	consts[lbVarLbInlineSelect] = 0
	if cfg.inlineSelect(slots) {
		consts[lbVarLbInlineSelect] = 1
	}
	for name, v := range consts {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("set %s: %w", name, err)
		}
	}
	// Load only the claimed programs: with a vendor lb-select the built-in
	// one is not even verified.
	want := map[string]string{}
	for _, slot := range slots {
		prog, ok := programOf[slot]
		if !ok {
			return nil, fmt.Errorf("lb has no stage for slot %s", slot)
		}
		want[prog] = slot
	}
	for name := range spec.Programs {
		if _, ok := want[name]; !ok {
			delete(spec.Programs, name)
		}
	}
	maps, err := pin.OpenShared(l)
	if err != nil {
		return nil, err
	}
	defer pin.CloseAll(maps)
	pin.Fit(spec, maps) // shared maps the supervisor sized from its config
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: maps})
	if err != nil {
		return nil, fmt.Errorf("load lb stages: %w", err)
	}
	defer coll.Close()

	st := &Stages{Progs: map[abi.Slot]*ebpf.Program{}, Pins: map[string]string{}}
	for prog, slot := range want {
		id, err := abi.ParseSlot(slot)
		if err != nil {
			st.Close()
			return nil, err
		}
		p := coll.DetachProgram(prog)
		path, err := l.PinProg(p, "lb", gen, slot)
		if err != nil {
			p.Close()
			st.Close()
			return nil, err
		}
		st.Progs[id] = p
		st.Pins[slot] = path
	}
	return st, nil
}
