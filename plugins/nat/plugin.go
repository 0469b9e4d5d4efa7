package nat

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/core/plugin"
)

// This file is all of the nat plugin that speaks the plugin protocol; the
// rest (stages, GC, exclusions, metrics) is independent of it.

// Version is the nat plugin's version; release builds set it with -ldflags -X.
var Version = "0.1.0"

// Commands are the Invoke commands of the nat plugin.
var Commands = []string{"gc", "stats"}

// Plugin is the nat datapath plugin.
type Plugin struct {
	plugin.Registry // answers Metrics: the datapath's counters, read at scrape time
	Log             hclog.Logger

	mu sync.Mutex
	rt *runtime // while activated
}

// New returns a nat plugin logging to log.
func New(log hclog.Logger) *Plugin {
	p := &Plugin{Registry: plugin.NewRegistry(), Log: log}
	p.MustRegister(collector{p})
	return p
}

// Describe names the slots, hooks and maps the nat plugin uses. It needs
// the CT maps: a mapping lives as long as its flow's CT entry, so the ct
// plugin must run too.
func (p *Plugin) Describe(ctx context.Context, req *plugin.DescribeRequest) (*plugin.Description, error) {
	if _, err := settings(req.Config); err != nil {
		return nil, err
	}
	schemas, err := plugin.Schemas(abi.MapNAT4, abi.MapCT4, abi.MapCTAny4, abi.MapPctx, abi.MapMetrics, abi.MapConfig, abi.MapCalls)
	if err != nil {
		return nil, err
	}
	return &plugin.Description{
		Name: Name, Version: Version, ABIVersion: abi.Version,
		Slots: Slots, Hooks: Hooks, Maps: schemas, PrivateMaps: privateMaps, GC: true,
		Commands: Commands,
	}, nil
}

// Load checks the config against the node, fills the port exclusions and
// loads and pins both stages for a generation. A bad config refuses the
// plugin with an error naming the key; nothing is loaded.
func (p *Plugin) Load(ctx context.Context, req *plugin.LoadRequest) (*plugin.LoadResponse, error) {
	s, err := settings(req.Config)
	if err != nil {
		return nil, err
	}
	l := pin.Layout{Root: req.BPFFS}
	if err := refreshOnce(l, s); err != nil {
		return nil, err
	}
	pins, err := LoadStages(l, req.Generation, s)
	if err != nil {
		return nil, err
	}
	p.Log.Info("loaded nat stages", "generation", req.Generation, "device", s.Device, "ifindex", s.Ifindex,
		"address", s.Addr, "ports", fmt.Sprintf("%d-%d", s.PortMin, s.PortMax))
	return &plugin.LoadResponse{Programs: pins}, nil
}

func settings(raw json.RawMessage) (Settings, error) {
	_, s, err := ParseConfig(raw)
	if err != nil {
		return s, err
	}
	return s, s.Resolve()
}

// Activate opens the maps for metrics and, with the lease, starts the GC and
// the upkeep of the port exclusions.
func (p *Plugin) Activate(ctx context.Context, req *plugin.ActivateRequest) error {
	s, err := settings(req.Config)
	if err != nil {
		return err
	}
	rt, err := start(pin.Layout{Root: req.BPFFS}, s, req.GCLease, p.Log)
	if err != nil {
		return err
	}
	p.mu.Lock()
	old := p.rt
	p.rt = rt
	p.mu.Unlock()
	if old != nil {
		old.stop()
	}
	if req.GCLease {
		p.Log.Info("nat gc lease granted", "interval", s.GCInterval)
	}
	return nil
}

// Deactivate stops the GC and returns once no pass runs, so the next lease
// holder never overlaps with this one.
func (p *Plugin) Deactivate(ctx context.Context) error {
	p.mu.Lock()
	rt := p.rt
	p.rt = nil
	p.mu.Unlock()
	if rt != nil {
		rt.stop()
		p.Log.Info("nat deactivated")
	}
	return nil
}

// Health is degraded after a failed GC pass or exclusion refresh.
func (p *Plugin) Health(ctx context.Context) (*plugin.Health, error) {
	p.mu.Lock()
	rt := p.rt
	p.mu.Unlock()
	if rt != nil {
		if err := rt.err(); err != nil {
			return &plugin.Health{Healthy: false, Reason: err.Error()}, nil
		}
	}
	return &plugin.Health{Healthy: true}, nil
}

// Invoke runs nat commands: "gc" purges orphans now (lease holder only),
// "stats" reports.
func (p *Plugin) Invoke(ctx context.Context, req *plugin.InvokeRequest) (json.RawMessage, error) {
	p.mu.Lock()
	rt := p.rt
	p.mu.Unlock()
	if rt == nil {
		return nil, fmt.Errorf("nat %s: plugin not activated yet", req.Command)
	}
	switch req.Command {
	case "gc":
		if rt.gc == nil {
			return nil, fmt.Errorf("nat gc: this instance holds no GC lease")
		}
		res, err := rt.gc.RunOnce(false)
		if err != nil {
			return nil, err
		}
		return json.Marshal(res)
	case "stats":
		st, err := rt.stats()
		if err != nil {
			return nil, err
		}
		return json.Marshal(st)
	}
	return nil, fmt.Errorf("nat: unknown command %q (have gc, stats)", req.Command)
}
