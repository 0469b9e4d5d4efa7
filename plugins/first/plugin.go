// Package first is an example vendor plugin: a backend-selection algorithm
// in the lb-select slot, replacing the lb plugin's own, without any change to
// the core or to lb. Every new flow of a service goes to its first backend.
package first

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/hashicorp/go-hclog"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/core/plugin"
)

// Version of the plugin.
var Version = "0.1.0"

// Slot is the slot it claims.
var Slot = abi.SlotName(abi.AbiHpSlotHP_SLOT_LB_SELECT)

// Plugin implements plugin.Datapath.
type Plugin struct {
	plugin.Registry // no metrics of its own: the zero Registry reports none
	Log             hclog.Logger
}

// Describe claims lb-select at ingress, where services are translated. It
// takes no config.
func (p *Plugin) Describe(ctx context.Context, req *plugin.DescribeRequest) (*plugin.Description, error) {
	if len(req.Config) > 0 && string(req.Config) != "null" && string(req.Config) != "{}" {
		return nil, fmt.Errorf("first: takes no config, got %s", req.Config)
	}
	schemas, err := plugin.Schemas(abi.MapPctx, abi.MapMetrics, abi.MapConfig, abi.MapCalls, "lb4_slots")
	if err != nil {
		return nil, err
	}
	return &plugin.Description{
		Name: "first", Version: Version, ABIVersion: abi.Version,
		Slots: []string{Slot}, Hooks: map[string][]string{Slot: {"ingress"}}, Maps: schemas,
	}, nil
}

// Load loads and pins the selection stage for a generation.
func (p *Plugin) Load(ctx context.Context, req *plugin.LoadRequest) (*plugin.LoadResponse, error) {
	l := pin.Layout{Root: req.BPFFS}
	spec, err := loadFirst()
	if err != nil {
		return nil, fmt.Errorf("load first spec: %w", err)
	}
	maps, err := pin.OpenShared(l)
	if err != nil {
		return nil, err
	}
	defer pin.CloseAll(maps)
	pin.Fit(spec, maps) // shared maps the supervisor sized from its config
	var objs firstPrograms
	if err := spec.LoadAndAssign(&objs, &ebpf.CollectionOptions{MapReplacements: maps}); err != nil {
		return nil, fmt.Errorf("load first stage: %w", err)
	}
	defer objs.HpFirstSelect.Close()
	path, err := l.PinProg(objs.HpFirstSelect, "first", req.Generation, Slot)
	if err != nil {
		return nil, err
	}
	return &plugin.LoadResponse{Programs: map[string]string{Slot: path}}, nil
}

// Activate has no background work.
func (p *Plugin) Activate(ctx context.Context, req *plugin.ActivateRequest) error { return nil }

// Deactivate has nothing to stop.
func (p *Plugin) Deactivate(ctx context.Context) error { return nil }

// Health is always good: the plugin keeps no state.
func (p *Plugin) Health(ctx context.Context) (*plugin.Health, error) {
	return &plugin.Health{Healthy: true}, nil
}

// Invoke knows no command.
func (p *Plugin) Invoke(ctx context.Context, req *plugin.InvokeRequest) (json.RawMessage, error) {
	return nil, fmt.Errorf("first: unknown command %q", req.Command)
}
