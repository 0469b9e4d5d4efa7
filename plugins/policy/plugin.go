package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/netpol"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/core/plugin"
)

// Version is the policy plugin's version; release builds set it with -ldflags -X.
var Version = "0.1.0"

// Plugin is the policy datapath plugin: the policy stage, identities and
// rule tables. Only the instance holding the lease writes the maps, so an
// upgrade never has two writers.
type Plugin struct {
	plugin.Registry // answers Metrics: verdict counters read at scrape time
	Log             hclog.Logger

	mu    sync.Mutex
	maps  *Maps
	store *Store
}

// New returns a policy plugin logging to log.
func New(log hclog.Logger) *Plugin {
	p := &Plugin{Registry: plugin.NewRegistry(), Log: log}
	p.MustRegister(verdicts{p})
	return p
}

// Commands are the Invoke commands the plugin understands.
var Commands = []string{"endpoint-add", "endpoint-del", "endpoint-list", "policy-apply", "policy-delete", "policy-list"}

// Describe names the slot and maps the policy plugin uses. The lease (GC in
// the protocol) marks the one instance that may write the maps.
func (p *Plugin) Describe(ctx context.Context, req *plugin.DescribeRequest) (*plugin.Description, error) {
	schemas, err := plugin.Schemas(abi.AbiMapIpcache, abi.AbiMapPolicy, abi.MapPctx, abi.MapMetrics, abi.MapConfig, abi.MapEvents, abi.MapCalls)
	if err != nil {
		return nil, err
	}
	return &plugin.Description{
		Name: "policy", Version: Version, ABIVersion: abi.Version,
		Slots: []string{Slot}, Maps: schemas, PrivateMaps: []string{VerdictsMap}, GC: true,
		Commands: Commands,
	}, nil
}

// Load loads and pins the policy stage for a generation. It never writes
// the rule maps: the running rules stay in force through a restart.
func (p *Plugin) Load(ctx context.Context, req *plugin.LoadRequest) (*plugin.LoadResponse, error) {
	prog, path, err := LoadStage(pin.Layout{Root: req.BPFFS}, req.Generation)
	if err != nil {
		return nil, err
	}
	prog.Close() // the pin keeps it
	p.Log.Info("loaded policy stage", "generation", req.Generation, "pin", path)
	return &plugin.LoadResponse{Programs: map[string]string{Slot: path}}, nil
}

// Activate makes this instance the writer: it opens the maps and reconciles
// them with the saved state.
func (p *Plugin) Activate(ctx context.Context, req *plugin.ActivateRequest) error {
	if !req.GCLease {
		return p.Deactivate(ctx)
	}
	if req.StateDir == "" {
		return fmt.Errorf("policy: activate without a state dir: nowhere to keep endpoints and policies")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.store != nil {
		return nil
	}
	maps, err := OpenMaps(pin.Layout{Root: req.BPFFS})
	if err != nil {
		return err
	}
	st, err := OpenStore(maps, req.StateDir)
	if err != nil {
		maps.Close()
		return err
	}
	p.maps, p.store = maps, st
	p.Log.Info("policy writer lease granted", "endpoints", len(st.state.Endpoints), "policies", len(st.state.Policies))
	return nil
}

// Deactivate gives up writing; the datapath keeps the rules.
func (p *Plugin) Deactivate(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.maps != nil {
		p.store.mu.Lock() // wait for a change in flight
		p.maps.Close()
		p.store.mu.Unlock()
	}
	p.maps, p.store = nil, nil
	return nil
}

// Health is always ok: the plugin has no background work that can fail.
func (p *Plugin) Health(ctx context.Context) (*plugin.Health, error) {
	return &plugin.Health{Healthy: true}, nil
}

// Invoke runs the endpoint and policy commands (see Commands).
func (p *Plugin) Invoke(ctx context.Context, req *plugin.InvokeRequest) (json.RawMessage, error) {
	p.mu.Lock()
	st := p.store
	p.mu.Unlock()
	if st == nil {
		return nil, fmt.Errorf("policy: this instance is not the active writer (lease not granted)")
	}
	switch req.Command {
	case "endpoint-add":
		var e netpol.Endpoint
		if err := decode(req, &e); err != nil {
			return nil, err
		}
		out, err := st.AddEndpoint(e)
		if err != nil {
			return nil, err
		}
		return json.Marshal(out)
	case "endpoint-del":
		var a netpol.EndpointDelArgs
		if err := decode(req, &a); err != nil {
			return nil, err
		}
		return ok(st.DelEndpoint(a.IP))
	case "endpoint-list":
		eps, err := st.Endpoints()
		if err != nil {
			return nil, err
		}
		return json.Marshal(eps)
	case "policy-apply":
		var a netpol.ApplyArgs
		if err := decode(req, &a); err != nil {
			return nil, err
		}
		res, err := st.Apply(a.Policies)
		if err != nil {
			return nil, err
		}
		return json.Marshal(res)
	case "policy-delete":
		var a netpol.DeleteArgs
		if err := decode(req, &a); err != nil {
			return nil, err
		}
		return ok(st.Delete(a))
	case "policy-list":
		return json.Marshal(st.Policies())
	}
	return nil, fmt.Errorf("policy: unknown command %q (have %v)", req.Command, Commands)
}

func decode(req *plugin.InvokeRequest, v any) error {
	if err := json.Unmarshal(req.Args, v); err != nil {
		return fmt.Errorf("policy %s: decode arguments: %w", req.Command, err)
	}
	return nil
}

func ok(err error) (json.RawMessage, error) {
	if err != nil {
		return nil, err
	}
	return json.RawMessage(`{}`), nil
}
