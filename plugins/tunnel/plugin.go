package tunnel

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/hashicorp/go-hclog"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/core/plugin"
	"github.com/hotpath/hotpath/core/tunnels"
)

// This file is all of the tunnel plugin that speaks the plugin protocol.

// Version is the tunnel plugin's version; release builds set it with -ldflags -X.
var Version = "0.1.0"

// Commands are the Invoke commands of the tunnel plugin.
var Commands = []string{tunnels.CmdAdd, tunnels.CmdDel, tunnels.CmdList}

// Plugin is the tunnel datapath plugin.
type Plugin struct {
	plugin.Registry // answers Metrics: the datapath's counters, read at scrape time
	Log             hclog.Logger

	mu sync.Mutex // serialises route changes and guards rt
	rt *runtime   // while activated
}

// runtime is what an activated instance holds open.
type runtime struct {
	s      Settings
	routes *ebpf.Map // shared tunnel4
	stats  *ebpf.Map // private tun_stats
}

func (rt *runtime) close() {
	rt.routes.Close()
	rt.stats.Close()
}

// New returns a tunnel plugin logging to log.
func New(log hclog.Logger) *Plugin {
	p := &Plugin{Registry: plugin.NewRegistry(), Log: log}
	p.MustRegister(collector{p})
	return p
}

// Describe names the slot, hook and maps the tunnel plugin uses.
func (p *Plugin) Describe(ctx context.Context, req *plugin.DescribeRequest) (*plugin.Description, error) {
	if _, err := ParseConfig(req.Config); err != nil {
		return nil, err
	}
	schemas, err := plugin.Schemas(abi.MapTunnel4, abi.MapPctx, abi.MapMetrics, abi.MapConfig, abi.MapCalls)
	if err != nil {
		return nil, err
	}
	return &plugin.Description{
		Name: Name, Version: Version, ABIVersion: abi.Version,
		Slots: Slots, Hooks: Hooks, Maps: schemas, PrivateMaps: privateMaps,
		Commands: Commands,
	}, nil
}

// Load resolves the overlay device and loads and pins the stage for a
// generation. Without the device (no "tunnel" block in the supervisor's
// config) the plugin is refused with an error saying so.
func (p *Plugin) Load(ctx context.Context, req *plugin.LoadRequest) (*plugin.LoadResponse, error) {
	s, err := settings(req.Config)
	if err != nil {
		return nil, err
	}
	pins, err := LoadStages(pin.Layout{Root: req.BPFFS}, req.Generation, s)
	if err != nil {
		return nil, err
	}
	p.Log.Info("loaded tunnel stage", "generation", req.Generation, "device", s.Device, "ifindex", s.Ifindex, "mtu", s.MTU)
	return &plugin.LoadResponse{Programs: pins}, nil
}

// Activate opens the route map and the counters.
func (p *Plugin) Activate(ctx context.Context, req *plugin.ActivateRequest) error {
	s, err := settings(req.Config)
	if err != nil {
		return err
	}
	l := pin.Layout{Root: req.BPFFS}
	routes, err := ebpf.LoadPinnedMap(l.Map(abi.MapTunnel4), nil)
	if err != nil {
		return fmt.Errorf("open %s: %w", abi.MapTunnel4, err)
	}
	priv, err := OpenPrivate(l)
	if err != nil {
		routes.Close()
		return err
	}
	rt := &runtime{s: s, routes: routes, stats: priv[tunnelMapTunStats]}
	p.mu.Lock()
	old := p.rt
	p.rt = rt
	p.mu.Unlock()
	if old != nil {
		old.close()
	}
	return nil
}

// Deactivate closes the maps; the routes stay in the datapath.
func (p *Plugin) Deactivate(ctx context.Context) error {
	p.mu.Lock()
	rt := p.rt
	p.rt = nil
	p.mu.Unlock()
	if rt != nil {
		rt.close()
	}
	return nil
}

// Health: the stage has no background work that can fail; the overlay
// device must still be there.
func (p *Plugin) Health(ctx context.Context) (*plugin.Health, error) {
	p.mu.Lock()
	rt := p.rt
	p.mu.Unlock()
	if rt != nil {
		s := rt.s
		if err := s.Resolve(); err != nil {
			return &plugin.Health{Healthy: false, Reason: err.Error()}, nil
		}
		if s.Ifindex != rt.s.Ifindex {
			return &plugin.Health{Healthy: false, Reason: fmt.Sprintf("tunnel device %s was re-created (ifindex %d, loaded with %d)", s.Device, s.Ifindex, rt.s.Ifindex)}, nil
		}
	}
	return &plugin.Health{Healthy: true}, nil
}

// Invoke runs tunnel-add, tunnel-del and tunnel-list (core/tunnels).
func (p *Plugin) Invoke(ctx context.Context, req *plugin.InvokeRequest) (json.RawMessage, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rt := p.rt
	if rt == nil {
		return nil, fmt.Errorf("tunnel %s: plugin not activated yet", req.Command)
	}
	switch req.Command {
	case tunnels.CmdAdd:
		var r tunnels.Route
		if err := strictJSON(req.Args, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", req.Command, err)
		}
		r, err := addRoute(rt.routes, rt.s, r)
		if err != nil {
			return nil, err
		}
		p.Log.Info("tunnel route added", "cidr", r.CIDR, "remote", r.Remote, "vni", r.VNI)
		return json.RawMessage("{}"), nil
	case tunnels.CmdDel:
		var d tunnels.DelArgs
		if err := strictJSON(req.Args, &d); err != nil {
			return nil, fmt.Errorf("%s: %w", req.Command, err)
		}
		if err := delRoute(rt.routes, d.CIDR); err != nil {
			return nil, err
		}
		p.Log.Info("tunnel route deleted", "cidr", d.CIDR)
		return json.RawMessage("{}"), nil
	case tunnels.CmdList:
		rs, err := listRoutes(rt.routes)
		if err != nil {
			return nil, err
		}
		return json.Marshal(rs)
	}
	return nil, fmt.Errorf("tunnel: unknown command %q (have %s, %s, %s)", req.Command, tunnels.CmdAdd, tunnels.CmdDel, tunnels.CmdList)
}
