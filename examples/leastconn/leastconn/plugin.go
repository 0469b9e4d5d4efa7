// Package leastconn is an out-of-tree hotpath plugin: backend selection by
// least active connections in the lb-select slot. It imports only the SDK
// (github.com/hotpath/hotpath/core/...).
package leastconn

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/core/plugin"
)

// Version of the plugin.
var Version = "0.1.0"

// Slot is the slot it claims.
var Slot = abi.SlotName(abi.AbiHpSlotHP_SLOT_LB_SELECT)

// Commands are its Invoke commands.
var Commands = []string{"counts"}

// Plugin implements plugin.Datapath. Make one with New.
type Plugin struct {
	plugin.Registry // answers Metrics from the collectors below
	Log             hclog.Logger
	refreshes       prometheus.Counter
	failures        prometheus.Counter
	active          *prometheus.GaugeVec

	life    sync.Mutex // serialises Activate and Deactivate
	refresh *refresher // running while this instance holds the GC lease

	mu    sync.Mutex // guards stats, written by the refresh loop
	stats stats
}

// New returns the plugin with its metrics registered; the supervisor
// exports them as hotpath_leastconn_<name>.
func New(log hclog.Logger) *Plugin {
	p := &Plugin{
		Registry: plugin.NewRegistry(),
		Log:      log,
		refreshes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "refreshes_total", Help: "Rebuilds of the connection counts from the CT maps.",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "refresh_failures_total", Help: "Rebuilds of the connection counts that failed.",
		}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "active_connections", Help: "Active connections per backend at the last refresh.",
		}, []string{"backend"}),
	}
	p.MustRegister(p.refreshes, p.failures, p.active)
	return p
}

// stats are what the refresh loop reports, for health and "counts".
type stats struct {
	refreshes uint64
	failures  uint64
	lastErr   error
	counts    map[uint32]uint64
}

// Describe claims lb-select at ingress, where services are translated, and
// the GC lease: only the lease holder rewrites the counts. A config it
// cannot parse is refused here, before anything changes.
func (p *Plugin) Describe(ctx context.Context, req *plugin.DescribeRequest) (*plugin.Description, error) {
	if _, err := ParseConfig(req.Config); err != nil {
		return nil, err
	}
	schemas, err := plugin.Schemas(abi.MapPctx, abi.MapMetrics, abi.MapConfig, abi.MapCalls,
		abi.MapCT4, abi.MapCTAny4, abi.AbiMapLb4Slots, abi.AbiMapLb4Backends, abi.AbiMapLb4Maglev, abi.AbiMapLb4Affinity)
	if err != nil {
		return nil, err
	}
	return &plugin.Description{
		Name: Name, Version: Version, ABIVersion: abi.Version,
		Slots: []string{Slot}, Hooks: map[string][]string{Slot: {"ingress"}}, Maps: schemas,
		PrivateMaps: []string{CountMap}, GC: true, Commands: Commands,
	}, nil
}

// Load loads and pins the selection stage for a generation.
func (p *Plugin) Load(ctx context.Context, req *plugin.LoadRequest) (*plugin.LoadResponse, error) {
	cfg, err := ParseConfig(req.Config)
	if err != nil {
		return nil, err
	}
	l := pin.Layout{Root: req.BPFFS}
	prog, err := LoadStage(l, cfg)
	if err != nil {
		return nil, err
	}
	defer prog.Close()
	path := l.Prog(Name, req.Generation, Slot)
	if err := pinStage(prog, path); err != nil {
		return nil, err
	}
	return &plugin.LoadResponse{Programs: map[string]string{Slot: path}}, nil
}

// Activate starts the refresh loop when this instance gets the GC lease.
func (p *Plugin) Activate(ctx context.Context, req *plugin.ActivateRequest) error {
	cfg, err := ParseConfig(req.Config)
	if err != nil {
		return err
	}
	every, _ := cfg.Interval() // validated by ParseConfig
	p.life.Lock()
	defer p.life.Unlock()
	if p.refresh != nil {
		p.refresh.stop()
		p.refresh = nil
	}
	if !req.GCLease {
		return nil
	}
	r, err := startRefresh(pin.Layout{Root: req.BPFFS}, every, p.record)
	if err != nil {
		return err
	}
	p.refresh = r
	return nil
}

// Deactivate stops the refresh loop; the datapath keeps selecting with the
// counts as they are, bumped by its own picks.
func (p *Plugin) Deactivate(ctx context.Context) error {
	p.life.Lock()
	defer p.life.Unlock()
	if p.refresh != nil {
		p.refresh.stop()
		p.refresh = nil
	}
	return nil
}

// record keeps the outcome of one refresh.
func (p *Plugin) record(counts map[uint32]uint64, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.lastErr = err
	if err != nil {
		p.stats.failures++
		if p.failures != nil {
			p.failures.Inc()
		}
		if p.Log != nil {
			p.Log.Warn("refresh connection counts", "error", err)
		}
		return
	}
	p.stats.refreshes++
	p.stats.counts = counts
	if p.refreshes != nil {
		p.refreshes.Inc()
		p.active.Reset() // backends gone since the last refresh disappear
		for id, n := range counts {
			p.active.WithLabelValues(strconv.FormatUint(uint64(id), 10)).Set(float64(n))
		}
	}
}

// Health is bad while the last refresh failed: selection then works from
// stale counts.
func (p *Plugin) Health(ctx context.Context) (*plugin.Health, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stats.lastErr != nil {
		return &plugin.Health{Healthy: false, Reason: p.stats.lastErr.Error()}, nil
	}
	return &plugin.Health{Healthy: true}, nil
}

// Invoke answers "counts" (backend id -> active connections at the last
// refresh).
func (p *Plugin) Invoke(ctx context.Context, req *plugin.InvokeRequest) (json.RawMessage, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch req.Command {
	case "counts":
		out := map[string]uint64{}
		for id, n := range p.stats.counts {
			out[strconv.FormatUint(uint64(id), 10)] = n
		}
		return json.Marshal(out)
	}
	return nil, fmt.Errorf("leastconn: unknown command %q (have %v)", req.Command, Commands)
}
