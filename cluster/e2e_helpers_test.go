package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotpath/hotpath/cluster"
	"github.com/hotpath/hotpath/cluster/etcdtest"
	"github.com/hotpath/hotpath/cluster/underlay"
	"github.com/hotpath/hotpath/core/services"
	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/supervisor"
)

// clusterLab is n node labs joined by an underlay (package underlay) where
// etcd runs.
type clusterLab struct {
	t     *testing.T
	net   *underlay.Net
	Etcd  *etcdtest.Server
	Nodes []*e2e.Env
}

func newClusterLab(t *testing.T, n int) *clusterLab {
	lab.Privileged(t)
	if _, err := etcdtest.Binary(); err != nil {
		t.Fatal(err)
	}
	net, err := underlay.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { net.Close() })
	c := &clusterLab{t: t, net: net, Etcd: net.Etcd}
	for i := 0; i < n; i++ {
		// Per-packet LB whatever HOTPATH_SOCKLB says: socket LB puts the
		// test process in a node's cgroup, and it can be in one only,
		// while these labs are three nodes. Socket LB with cluster-fed
		// services is TestPrivilegedKubeServiceThroughVIP's socklb=on half.
		env := e2e.NewMode(t, false, lab.Options{Pods: []string{"client", "web"}})
		if err := net.Join(i, env.Lab.Node.Name); err != nil {
			t.Fatal(err)
		}
		if _, err := lab.EchoServer(env.Lab.Pods["web"].NS, env.Lab.Pods["web"].IP.String()+":8080"); err != nil {
			t.Fatal(err)
		}
		c.Nodes = append(c.Nodes, env)
	}
	if err := c.Etcd.Start(); err != nil {
		t.Fatal(err)
	}
	return c
}

// start runs node i's supervisor (ct and lb plugins) in cluster mode.
func (c *clusterLab) start(i int) {
	env := c.Nodes[i]
	env.Extra = []string{"--kvstore-endpoints", c.Etcd.ClientURL, "--node-name", fmt.Sprintf("node%d", i),
		"--node-ip", underlay.NodeIP(i), "--pod-cidr", fmt.Sprintf("10.%d.0.0/24", 200+i)}
	env.StartSupervisor(env.PluginFlag("ct"), env.PluginFlag("lb"))
}

// cli runs `hotpath cluster ...` from the underlay namespace.
func (c *clusterLab) cli(args ...string) (string, error) {
	bin := filepath.Join(c.Nodes[0].Bin, "hotpath")
	full := append([]string{"netns", "exec", c.net.NS, bin, "cluster", "--kvstore-endpoints", c.Etcd.ClientURL}, args...)
	out, err := exec.Command("ip", full...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("hotpath cluster %v: %v: %s", args, err, out)
	}
	return string(out), nil
}

func (c *clusterLab) status(i int) cluster.Status {
	c.t.Helper()
	var st supervisor.Status
	c.Nodes[i].JSON(&st, "status")
	if st.Cluster == nil {
		c.t.Fatalf("node %d: status has no cluster section", i)
	}
	return *st.Cluster
}

// waitState waits until every node's sync is in state.
func (c *clusterLab) waitState(state string, within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for i := range c.Nodes {
		for {
			st := c.status(i)
			if st.State == state {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("node %d: cluster state %s (%s), want %s within %s", i, st.State, st.Reason, state, within)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func (c *clusterLab) services(i int) map[string]services.ServiceInfo {
	c.t.Helper()
	out, err := c.Nodes[i].CLI("lb", "service", "list", "-o", "json")
	if err != nil {
		c.t.Fatal(err)
	}
	var svcs []services.ServiceInfo
	if err := json.Unmarshal(out, &svcs); err != nil {
		c.t.Fatal(err)
	}
	m := map[string]services.ServiceInfo{}
	for _, s := range svcs {
		m[s.VIP] = s
	}
	return m
}

// waitService waits until every node has (or lacks) vip and returns how
// long each took.
func (c *clusterLab) waitService(vip string, present bool, within time.Duration, nodes ...int) []time.Duration {
	c.t.Helper()
	start := time.Now()
	took := make([]time.Duration, len(nodes))
	for k, i := range nodes {
		for {
			if _, ok := c.services(i)[vip]; ok == present {
				took[k] = time.Since(start)
				break
			}
			if time.Since(start) > within {
				c.t.Fatalf("node %d: service %s present=%v not reached within %s", i, vip, !present, within)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return took
}

// store opens the cluster's etcd from the test process, through the
// underlay namespace.
func (c *clusterLab) store() *cluster.Store {
	c.t.Helper()
	ns := &lab.NS{Name: c.net.NS}
	st, err := cluster.OpenDial([]string{c.Etcd.ClientURL}, "", func(ctx context.Context, addr string) (net.Conn, error) {
		return ns.Dial(ctx, "tcp", addr)
	})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { st.Close() })
	return st
}
