package ct

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/hashicorp/go-hclog"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/core/plugin"
)

// Version is the ct plugin's version; release builds set it with -ldflags -X.
var Version = "0.1.0"

// CTLayout is the layout version of the CT value this build writes (1:
// hp_ct_entry, 2: hp_ct_entry_v2, see bpf/lib/abi.h), set with -ldflags -X
// for the second build (`make build` makes bin/demo/hotpath-ct-v2). The
// programs are the same object: its loader fits them to the pinned maps'
// layout, and an upgrade between builds of different layouts migrates the
// maps.
var CTLayout = "1"

// layout parses CTLayout.
func layout() (uint32, error) {
	v, err := strconv.ParseUint(CTLayout, 10, 32)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("ct build: layout %q: want 1 or 2", CTLayout)
	}
	return uint32(v), nil
}

// Plugin is the ct datapath plugin: the ct stage and CT garbage collection.
type Plugin struct {
	plugin.Registry // answers Metrics
	Log             hclog.Logger
	metrics         *Metrics

	mu     sync.Mutex
	gc     *GC
	maps   map[string]*ebpf.Map
	cancel context.CancelFunc
	done   chan struct{}
	gcErr  error
}

// New returns a ct plugin logging to log.
func New(log hclog.Logger) *Plugin {
	reg := plugin.NewRegistry()
	return &Plugin{Registry: reg, Log: log, metrics: NewMetrics(reg)}
}

// Describe names the slot and maps the ct plugin uses.
func (p *Plugin) Describe(ctx context.Context, req *plugin.DescribeRequest) (*plugin.Description, error) {
	if _, err := ParseConfig(req.Config); err != nil {
		return nil, err
	}
	schemas, err := plugin.Schemas(abi.MapCT4, abi.MapCTAny4, abi.MapPctx, abi.MapMetrics, abi.MapConfig, abi.MapCalls)
	if err != nil {
		return nil, err
	}
	v, err := layout()
	if err != nil {
		return nil, err
	}
	if err := plugin.Own(schemas, v, abi.MapCT4, abi.MapCTAny4); err != nil {
		return nil, err
	}
	return &plugin.Description{
		Name: "ct", Version: Version, ABIVersion: abi.Version,
		Slots: []string{Slot}, Maps: schemas, GC: true,
		Commands: []string{"gc", "stats", plugin.CommandMigrate},
	}, nil
}

// Load loads and pins the ct stage for a generation.
func (p *Plugin) Load(ctx context.Context, req *plugin.LoadRequest) (*plugin.LoadResponse, error) {
	cfg, err := ParseConfig(req.Config)
	if err != nil {
		return nil, err
	}
	prog, path, err := LoadStage(pin.Layout{Root: req.BPFFS}, req.Generation, cfg)
	if err != nil {
		return nil, err
	}
	prog.Close() // the pin keeps it
	p.Log.Info("loaded ct stage", "generation", req.Generation, "pin", path)
	return &plugin.LoadResponse{Programs: map[string]string{Slot: path}}, nil
}

// Activate starts GC when this instance holds the lease. The first pass runs
// at once, as Cilium's agent does at start.
func (p *Plugin) Activate(ctx context.Context, req *plugin.ActivateRequest) error {
	if !req.GCLease {
		return p.Deactivate(ctx)
	}
	cfg, err := ParseConfig(req.Config)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cancel != nil {
		return nil // already running
	}
	maps, err := ctmap.Open(pin.Layout{Root: req.BPFFS})
	if err != nil {
		return err
	}
	p.maps = maps
	p.gc = &GC{Maps: maps, Cfg: cfg.GC, Log: p.Log, Metrics: p.metrics}
	p.gc.Prepare()
	gctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go func(gc *GC, done chan struct{}) {
		defer close(done)
		if _, err := gc.RunOnce(); err != nil {
			p.setErr(err)
		}
		gc.Run(gctx)
	}(p.gc, p.done)
	p.Log.Info("ct gc lease granted", "method", p.gc.Stats().Method, "start", cfg.GC.Start.D(), "min", cfg.GC.Min.D(), "max", cfg.GC.Max.D())
	return nil
}

func (p *Plugin) setErr(err error) {
	p.mu.Lock()
	p.gcErr = err
	p.mu.Unlock()
	p.Log.Error("ct gc", "error", err)
}

// Deactivate stops GC and returns once no GC pass is running, so the next
// lease holder never overlaps with this one.
func (p *Plugin) Deactivate(ctx context.Context) error {
	p.mu.Lock()
	cancel, done, maps := p.cancel, p.done, p.maps
	p.cancel, p.done, p.maps = nil, nil, nil
	p.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	<-done
	p.mu.Lock()
	if p.gc != nil {
		p.gc.Close()
	}
	p.mu.Unlock()
	pin.CloseAll(maps)
	p.Log.Info("ct gc lease released")
	return nil
}

// Health is degraded while the latest GC pass failed, the first one or any
// later one.
func (p *Plugin) Health(ctx context.Context) (*plugin.Health, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gc != nil && p.cancel != nil {
		if err := p.gc.Err(); err != nil {
			return &plugin.Health{Healthy: false, Reason: err.Error()}, nil
		}
	}
	if p.gcErr != nil {
		return &plugin.Health{Healthy: false, Reason: p.gcErr.Error()}, nil
	}
	return &plugin.Health{Healthy: true}, nil
}

// Invoke runs ct commands: "gc" runs a pass now, "stats" reports.
func (p *Plugin) Invoke(ctx context.Context, req *plugin.InvokeRequest) (json.RawMessage, error) {
	p.mu.Lock()
	gc := p.gc
	p.mu.Unlock()
	switch req.Command {
	case plugin.CommandMigrate:
		return plugin.HandleMigrate(req.Args, migrate)
	case "gc":
		if gc == nil || p.cancel == nil {
			return nil, fmt.Errorf("ct gc: this instance holds no GC lease")
		}
		if _, err := gc.RunOnce(); err != nil {
			return nil, err
		}
		return json.Marshal(gc.Stats())
	case "stats":
		if gc == nil {
			return json.Marshal(GCStats{})
		}
		return json.Marshal(gc.Stats())
	}
	return nil, fmt.Errorf("ct: unknown command %q (have gc, stats)", req.Command)
}
