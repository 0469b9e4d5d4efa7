package lb

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/core/plugin"
	"github.com/hotpath/hotpath/core/services"
)

// Version is the lb plugin's version; release builds set it with -ldflags -X.
var Version = "0.1.0"

// Plugin is the lb datapath plugin: the lb stages and the service maps.
type Plugin struct {
	plugin.Registry // answers Metrics
	Log             hclog.Logger
	metrics         *Metrics

	mu    sync.Mutex
	store *Store
	maps  *Maps
	root  string
	sock  bool // socket LB is on (config socket_lb)
}

// New returns an lb plugin logging to log.
func New(log hclog.Logger) *Plugin {
	p := &Plugin{Registry: plugin.NewRegistry(), Log: log}
	p.metrics = NewMetrics(p.Registry, p.currentStore)
	p.Registry.MustRegister(newSockMetrics(p.sockRoot))
	return p
}

// sockRoot is the pin root of the socket LB counters, "" when off.
func (p *Plugin) sockRoot() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.sock || p.store == nil {
		return ""
	}
	return p.root
}

func (p *Plugin) currentStore() *Store {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.store
}

// Commands are the Invoke commands of the lb plugin.
var Commands = []string{
	"service-add", "service-apply", "service-del", "service-list", "service-set-algorithm",
	"backend-add", "backend-del",
}

// Describe names the slots and maps the lb plugin uses; its config decides
// whether it claims lb-select (see Config.Select).
func (p *Plugin) Describe(ctx context.Context, req *plugin.DescribeRequest) (*plugin.Description, error) {
	cfg, err := ParseConfig(req.Config)
	if err != nil {
		return nil, err
	}
	schemas, err := plugin.Schemas(append(slices.Clone(sharedNames),
		abi.MapCT4, abi.MapCTAny4, abi.MapPctx, abi.MapMetrics, abi.MapConfig, abi.MapCalls)...)
	if err != nil {
		return nil, err
	}
	return &plugin.Description{
		Name: "lb", Version: Version, ABIVersion: abi.Version,
		Slots: cfg.Slots(), Hooks: cfg.Hooks(), Maps: schemas, PrivateMaps: []string{StateMap}, GC: false,
		Commands: Commands,
	}, nil
}

// Load loads and pins the lb stages for a generation.
func (p *Plugin) Load(ctx context.Context, req *plugin.LoadRequest) (*plugin.LoadResponse, error) {
	cfg, err := ParseConfig(req.Config)
	if err != nil {
		return nil, err
	}
	st, err := LoadStages(pin.Layout{Root: req.BPFFS}, req.Generation, cfg, cfg.Slots())
	if err != nil {
		return nil, err
	}
	st.Close() // the pins keep them
	resp := &plugin.LoadResponse{Programs: st.Pins}
	if cfg.sockActive() {
		if resp.Cgroup, err = LoadSock(pin.Layout{Root: req.BPFFS}, req.Generation, cfg); err != nil {
			return nil, err
		}
	}
	p.Log.Info("loaded lb stages", "generation", req.Generation, "slots", len(st.Pins), "cgroup", len(resp.Cgroup))
	return resp, nil
}

// Activate opens the service maps for the control commands and rebuilds
// the Maglev tables if the configured seed changed. The lb plugin takes no
// GC lease: its CT_SERVICE entries are collected by the ct plugin.
func (p *Plugin) Activate(ctx context.Context, req *plugin.ActivateRequest) error {
	cfg, err := ParseConfig(req.Config)
	if err != nil {
		return err
	}
	maps, err := OpenMaps(pin.Layout{Root: req.BPFFS})
	if err != nil {
		return err
	}
	store := NewStore(maps, cfg)
	store.Metrics = p.metrics
	n, err := store.Reseed()
	if err != nil {
		maps.Close()
		return fmt.Errorf("activate lb: %w", err)
	}
	if n > 0 {
		p.Log.Info("rebuilt maglev tables for a new seed", "tables", n, "seed", cfg.MaglevSeed)
	}
	p.mu.Lock()
	old := p.maps
	p.store, p.maps, p.root, p.sock = store, maps, req.BPFFS, cfg.sockActive()
	p.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// Deactivate drops the maps; the datapath keeps running on them.
func (p *Plugin) Deactivate(ctx context.Context) error {
	p.mu.Lock()
	maps := p.maps
	p.store, p.maps = nil, nil
	p.mu.Unlock()
	if maps != nil {
		maps.Close()
	}
	return nil
}

// Health is always ok: the lb plugin has no background work to fail.
func (p *Plugin) Health(ctx context.Context) (*plugin.Health, error) {
	return &plugin.Health{Healthy: true}, nil
}

// Invoke runs the lb commands (see Commands).
func (p *Plugin) Invoke(ctx context.Context, req *plugin.InvokeRequest) (json.RawMessage, error) {
	p.mu.Lock()
	store := p.store
	p.mu.Unlock()
	if store == nil {
		return nil, fmt.Errorf("lb %s: plugin not activated yet", req.Command)
	}
	res, err := Run(store, req.Command, req.Args)
	p.metrics.command(req.Command, err)
	if err != nil {
		return nil, err
	}
	if req.Command == "service-apply" {
		p.Log.Info("lb command", "command", req.Command, "bytes", len(req.Args))
	} else if req.Command != "service-list" {
		p.Log.Info("lb command", "command", req.Command, "args", string(req.Args))
	}
	return json.Marshal(res)
}

// Run executes one command against store; args are the command's JSON
// arguments. It is Invoke without the plugin around it.
func Run(store *Store, command string, args json.RawMessage) (any, error) {
	switch command {
	case "service-add":
		var a services.ServiceAddArgs
		if err := decodeArgs(args, &a); err != nil {
			return nil, fmt.Errorf("service-add: %w", err)
		}
		spec, err := a.Spec()
		if err != nil {
			return nil, err
		}
		return store.Add(spec)
	case "service-apply":
		var all []services.ServiceAddArgs
		if err := decodeArgs(args, &all); err != nil {
			return nil, fmt.Errorf("service-apply: %w", err)
		}
		return apply(store, all)
	case "service-del":
		var a services.ServiceArgs
		if err := decodeArgs(args, &a); err != nil {
			return nil, fmt.Errorf("service-del: %w", err)
		}
		vip, err := services.ParseVIP(a.VIP)
		if err != nil {
			return nil, err
		}
		return done(store.Del(vip))
	case "service-list":
		return store.List()
	case "service-set-algorithm":
		var a services.SetAlgorithmArgs
		if err := decodeArgs(args, &a); err != nil {
			return nil, fmt.Errorf("service-set-algorithm: %w", err)
		}
		vip, alg, m, err := a.Parse()
		if err != nil {
			return nil, err
		}
		return done(store.SetAlgorithm(vip, alg, m))
	case "backend-add", "backend-del":
		var a services.BackendArgs
		if err := decodeArgs(args, &a); err != nil {
			return nil, fmt.Errorf("%s: %w", command, err)
		}
		vip, b, err := a.Parse()
		if err != nil {
			return nil, err
		}
		if command == "backend-add" {
			return done(store.AddBackend(vip, b))
		}
		return done(store.DelBackend(vip, b))
	}
	return nil, fmt.Errorf("lb: unknown command %q (have %v)", command, Commands)
}

// apply adds many services in one command, for controllers that configure a
// node in bulk. Every service is validated before the first one is added, so
// bad input changes nothing.
func apply(store *Store, all []services.ServiceAddArgs) (any, error) {
	specs := make([]services.ServiceSpec, 0, len(all))
	for i, a := range all {
		spec, err := a.Spec()
		if err != nil {
			return nil, fmt.Errorf("service-apply: service %d: %w", i, err)
		}
		specs = append(specs, spec)
	}
	n, err := store.Apply(specs)
	if err != nil {
		return nil, err
	}
	return services.ApplyResult{Added: n}, nil
}

// done is the answer of a command that returns nothing but success.
func done(err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// decodeArgs reads command arguments strictly, so a misspelt field is an
// error instead of a silently applied default.
func decodeArgs(raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return fmt.Errorf("missing arguments")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode arguments: %w", err)
	}
	return nil
}
