package ct

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/pin"
)

// Slot is the pipeline slot the ct stage occupies.
var Slot = abi.SlotName(abi.AbiHpSlotHP_SLOT_CT)

// LoadStage loads the ct stage against the shared maps pinned under l, with
// the lifetimes of cfg, and pins it for generation gen. The returned program
// is also reachable through the returned pin path.
func LoadStage(l pin.Layout, gen uint32, cfg Config) (*ebpf.Program, string, error) {
	spec, err := loadCt()
	if err != nil {
		return nil, "", fmt.Errorf("load ct spec: %w", err)
	}
	consts := cfg.Lifetimes.Seconds()
	consts[ctmap.AccountingVar] = ctmap.AccountingValue(cfg.Accounting)
	for name, v := range consts {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, "", fmt.Errorf("set %s: %w", name, err)
		}
	}
	maps, err := pin.OpenShared(l)
	if err != nil {
		return nil, "", err
	}
	defer pin.CloseAll(maps)
	pin.Fit(spec, maps) // shared maps the supervisor sized from its config
	var objs ctPrograms
	if err := spec.LoadAndAssign(&objs, &ebpf.CollectionOptions{MapReplacements: maps}); err != nil {
		return nil, "", fmt.Errorf("load ct stage: %w", err)
	}
	path, err := l.PinProg(objs.HpCt, "ct", gen, Slot)
	if err != nil {
		objs.HpCt.Close()
		return nil, "", err
	}
	return objs.HpCt, path, nil
}
