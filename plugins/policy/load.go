package policy

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
)

// Slot is the pipeline slot the policy stage occupies. It runs at both
// hooks: egress policy where a pod's packets enter the node (TCX ingress),
// ingress policy where they leave it towards a pod (TCX egress).
var Slot = abi.SlotName(abi.AbiHpSlotHP_SLOT_POLICY)

// LoadStage loads the policy stage against the shared maps pinned under l and
// the private verdict counters, and pins it for generation gen.
func LoadStage(l pin.Layout, gen uint32) (*ebpf.Program, string, error) {
	spec, err := loadPolicy()
	if err != nil {
		return nil, "", fmt.Errorf("load policy spec: %w", err)
	}
	maps, err := pin.OpenShared(l)
	if err != nil {
		return nil, "", err
	}
	defer pin.CloseAll(maps)
	pin.Fit(spec, maps) // shared maps the supervisor sized (config, live resize)
	verdicts, err := openVerdicts(l)
	if err != nil {
		return nil, "", err
	}
	defer verdicts.Close()
	maps["policy_verdicts"] = verdicts
	var objs policyPrograms
	if err := spec.LoadAndAssign(&objs, &ebpf.CollectionOptions{MapReplacements: maps}); err != nil {
		return nil, "", fmt.Errorf("load policy stage: %w", err)
	}
	path, err := l.PinProg(objs.HpPolicy, "policy", gen, Slot)
	if err != nil {
		objs.HpPolicy.Close()
		return nil, "", err
	}
	return objs.HpPolicy, path, nil
}
