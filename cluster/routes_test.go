package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hotpath/hotpath/cluster"
	"github.com/hotpath/hotpath/cluster/underlay"
	"github.com/hotpath/hotpath/core/plugin"
	"github.com/hotpath/hotpath/core/tunnels"
	"github.com/hotpath/hotpath/lab"
)

// tunnelDouble stands in for the tunnel plugin at the Invoke boundary
// only (the plugin is another helper's work in progress): it keeps routes
// by the core/tunnels contract and counts the commands it gets.
type tunnelDouble struct {
	mu     sync.Mutex
	routes map[string]tunnels.Route
	cmds   []string
}

func (d *tunnelDouble) PluginNames() []string { return []string{"tunnel"} }

func (d *tunnelDouble) Invoke(_ context.Context, name string, req *plugin.InvokeRequest) (json.RawMessage, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if name != "tunnel" {
		return nil, fmt.Errorf("no plugin %q", name)
	}
	d.cmds = append(d.cmds, req.Command)
	switch req.Command {
	case tunnels.CmdList:
		return json.Marshal(slices.Collect(maps.Values(d.routes)))
	case tunnels.CmdAdd:
		var r tunnels.Route
		if err := json.Unmarshal(req.Args, &r); err != nil {
			return nil, err
		}
		if _, _, err := r.Parse(); err != nil {
			return nil, err
		}
		d.routes[r.CIDR] = r
	case tunnels.CmdDel:
		var a tunnels.DelArgs
		if err := json.Unmarshal(req.Args, &a); err != nil {
			return nil, err
		}
		if _, ok := d.routes[a.CIDR]; !ok {
			return nil, fmt.Errorf("tunnel %s: not found", a.CIDR)
		}
		delete(d.routes, a.CIDR)
	default:
		return nil, fmt.Errorf("unknown command %q", req.Command)
	}
	return json.RawMessage("{}"), nil
}

func (d *tunnelDouble) snapshot() (map[string]tunnels.Route, []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.routes), slices.Clone(d.cmds)
}

func TestRoutesDerivation(t *testing.T) {
	nodes := map[string]cluster.Node{
		"a": {Name: "a", IP: "192.0.2.1", PodCIDR: "10.200.0.0/24"},
		"b": {Name: "b", IP: "192.0.2.2", PodCIDR: "10.201.0.7/24"},
		"c": {Name: "c", IP: "192.0.2.3"},                         // no pod CIDR: no route
		"d": {Name: "d", IP: "not-an-ip", PodCIDR: "10.9.0.0/24"}, // refused
	}
	got := cluster.Routes(nodes, "a")
	want := map[string]tunnels.Route{"10.201.0.0/24": {CIDR: "10.201.0.0/24", Remote: "192.0.2.2", VNI: tunnels.DefaultVNI}}
	if !maps.Equal(got, want) {
		t.Errorf("Routes for a = %v, want %v", got, want)
	}
}

// Nodes register with a lease; every node's routes follow the registered
// nodes, and a node that leaves (its lease ends) takes its route away.
// Real etcd, in-process syncs, the tunnel plugin doubled at Invoke.
func TestPrivilegedClusterNodeRoutes(t *testing.T) {
	lab.Privileged(t)
	net0, err := underlay.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { net0.Close() })
	if err := net0.Etcd.Start(); err != nil {
		t.Fatal(err)
	}
	ns := &lab.NS{Name: net0.NS}
	dialer := func(ctx context.Context, addr string) (net.Conn, error) { return ns.Dial(ctx, "tcp", addr) }
	type member struct {
		dp     *tunnelDouble
		sync   *cluster.Sync
		cancel context.CancelFunc
		done   chan struct{}
	}
	start := func(i int) *member {
		cfg := cluster.Config{KVStoreEndpoints: []string{net0.Etcd.ClientURL}, NodeName: fmt.Sprintf("n%d", i),
			NodeIP: underlay.NodeIP(i), PodCIDR: fmt.Sprintf("10.%d.0.0/24", 200+i), LeaseTTLSeconds: 2}
		m := &member{dp: &tunnelDouble{routes: map[string]tunnels.Route{}}, done: make(chan struct{})}
		m.sync, err = cluster.New(cfg, m.dp, hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		m.sync.SetDialer(dialer)
		ctx, cancel := context.WithCancel(context.Background())
		m.cancel = cancel
		go func() { defer close(m.done); m.sync.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-m.done })
		return m
	}
	routesOf := func(m *member) map[string]string {
		r, _ := m.dp.snapshot()
		out := map[string]string{}
		for cidr, rt := range r {
			out[cidr] = rt.Remote
		}
		return out
	}
	wait := func(what string, m *member, want map[string]string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !maps.Equal(routesOf(m), want) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: routes %v, want %v (status %+v)", what, routesOf(m), want, m.sync.Status())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	ms := []*member{start(0), start(1), start(2)}
	for i, m := range ms {
		want := map[string]string{}
		for j := range ms {
			if j != i {
				want[fmt.Sprintf("10.%d.0.0/24", 200+j)] = underlay.NodeIP(j)
			}
		}
		wait(fmt.Sprintf("node %d with three nodes", i), m, want)
	}
	_, before := ms[0].dp.snapshot()
	// Node 2 leaves: its lease runs out and its route goes from the others.
	ms[2].cancel()
	<-ms[2].done
	wait("node 0 after node 2 left", ms[0], map[string]string{"10.201.0.0/24": underlay.NodeIP(1)})
	wait("node 1 after node 2 left", ms[1], map[string]string{"10.200.0.0/24": underlay.NodeIP(0)})
	_, after := ms[0].dp.snapshot()
	var changes []string
	for _, c := range after[len(before):] {
		if c != tunnels.CmdList {
			changes = append(changes, c)
		}
	}
	if !slices.Equal(changes, []string{tunnels.CmdDel}) {
		t.Errorf("node 0 sent %v when node 2 left, want exactly one %s (the others' routes untouched)", changes, tunnels.CmdDel)
	}
	if st := ms[0].sync.Status(); st.State != cluster.StateHealthy || st.Routes != 1 || len(st.Skipped) != 0 {
		t.Errorf("node 0 status %+v: want healthy, 1 route, nothing skipped", st)
	}
}
