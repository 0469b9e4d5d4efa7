package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotpath/hotpath/cluster"
	"github.com/hotpath/hotpath/cluster/etcdtest"
	"github.com/hotpath/hotpath/core/tunnels"
	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/supervisor"
)

// Two nodes with the real tunnel plugin and no hand-written route: node
// registration in etcd fills each node's tunnel routes, pods reach each
// other through the overlay, and a node that leaves (its supervisor
// stops, its lease runs out) has its route removed from the other.
func TestPrivilegedClusterTunnelRoutes(t *testing.T) {
	m, envs := e2e.NewMulti(t, [2][]string{{"a"}, {"b"}})
	etcd := etcdtest.Start(t, m.Underlay[0].String(), 2379, "ip", "netns", "exec", m.Nodes[0].Node.Name)
	for i, e := range envs {
		tcfg, _ := json.Marshal(map[string]any{"pod_cidrs": []string{m.Nodes[i].PodCIDR().String()}})
		e.WriteConfig(supervisor.Config{
			Tunnel: &supervisor.TunnelConfig{UnderlayDevice: lab.UnderlayDevice},
			Plugins: []supervisor.PluginConfig{
				{Name: "ct", Path: filepath.Join(e.Bin, "hotpath-ct")},
				{Name: "lb", Path: filepath.Join(e.Bin, "hotpath-lb")},
				{Name: "tunnel", Path: filepath.Join(e.Bin, "hotpath-tunnel"), Config: tcfg},
			},
			Config: cluster.Config{KVStoreEndpoints: []string{etcd.ClientURL}, NodeName: fmt.Sprintf("node%d", i),
				NodeIP: m.Underlay[i].String(), PodCIDR: m.Nodes[i].PodCIDR().String(), LeaseTTLSeconds: 3},
		})
		e.StartSupervisor()
	}
	routes := func(i int) []tunnels.Route {
		var rs []tunnels.Route
		envs[i].JSON(&rs, "tunnel", "list")
		return rs
	}
	for i := range envs {
		peer := 1 - i
		want := tunnels.Route{CIDR: m.Nodes[peer].PodCIDR().String(), Remote: m.Underlay[peer].String(), VNI: tunnels.DefaultVNI}
		waitFor(t, fmt.Sprintf("node %d route to node %d", i, peer), func() bool {
			rs := routes(i)
			return len(rs) == 1 && rs[0] == want
		})
	}
	a, b := m.Nodes[0].Pods["a"], m.Nodes[1].Pods["b"]
	if _, err := lab.EchoServer(b.NS, b.IP.String()+":7000"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Echo(ctx, "tcp", b.IP.String()+":7000", []byte("across the overlay")); err != nil {
		t.Fatalf("pod a -> pod b over routes from etcd: %v", err)
	}
	envs[1].Sup.Stop(5 * time.Second)
	waitFor(t, "node 0's route to node 1 removed after node 1 left", func() bool { return len(routes(0)) == 0 })
}
