package cluster_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hotpath/hotpath/cluster"
	"github.com/hotpath/hotpath/lab"
)

// outage is how long etcd stays down under traffic (the issue says 30 s;
// HOTPATH_CLUSTER_OUTAGE shortens it for a quick local run).
func outage() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("HOTPATH_CLUSTER_OUTAGE")); err == nil {
		return d
	}
	return 30 * time.Second
}

// Three nodes and a real etcd: a service written with `hotpath cluster
// service add` reaches every node within 1 s; nodes register and see each
// other; etcd down under traffic keeps the datapath and the flow, status
// says degraded, and the resync after it changes nothing; a restarted node
// resyncs what changed while it was down.
func TestPrivilegedClusterEtcd(t *testing.T) {
	c := newClusterLab(t, 3)
	for i := range c.Nodes {
		c.start(i)
	}
	c.waitState(cluster.StateHealthy, 10*time.Second)

	const vip = "10.96.0.10:80/tcp"
	web := c.Nodes[0].Lab.Pods["web"].IP.String() + ":8080"
	if _, err := c.cli("service", "add", vip, "--backend", web); err != nil {
		t.Fatal(err)
	}
	took := c.waitService(vip, true, 5*time.Second, 0, 1, 2)
	for i, d := range took {
		t.Logf("node %d programmed %s after %s", i, vip, d)
		if d > time.Second {
			t.Errorf("node %d: service programmed after %s, want within 1s", i, d)
		}
	}
	if _, err := c.cli("service", "add", vip, "--backend", web); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("adding %s twice: %v, want an error saying it exists", vip, err)
	}
	out, err := c.cli("node", "list")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"node0", "node1", "node2"} {
		if !strings.Contains(out, n) {
			t.Errorf("cluster node list lacks %s:\n%s", n, out)
		}
	}
	// No tunnel plugin runs here: the routes the nodes derive are named as
	// not programmed, never dropped silently.
	for i := range c.Nodes {
		st := c.status(i)
		if len(st.Nodes) != 3 || st.Routes != 2 {
			t.Errorf("node %d: nodes %v routes %d, want 3 nodes and 2 routes", i, st.Nodes, st.Routes)
		}
		if !strings.Contains(strings.Join(st.Skipped, "\n"), "no tunnel plugin loaded: 2 tunnel routes not programmed") {
			t.Errorf("node %d: skipped %q does not name the missing tunnel plugin", i, st.Skipped)
		}
	}

	// A flow through the VIP on node 0 lives through the outage.
	client := c.Nodes[0].Lab.Pods["client"]
	s, err := lab.StartStream(context.Background(), client.NS, "10.96.0.10:80", 512, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	before := make([]int, len(c.Nodes))
	for i := range c.Nodes {
		before[i] = c.status(i).Changes
	}
	c.Etcd.Stop()
	c.waitState(cluster.StateDegraded, 5*time.Second)
	time.Sleep(outage())
	for i := range c.Nodes {
		if _, ok := c.services(i)[vip]; !ok {
			t.Errorf("node %d lost %s while etcd was down", i, vip)
		}
		if st := c.status(i); st.State != cluster.StateDegraded {
			t.Errorf("node %d: state %s during the outage, want degraded", i, st.State)
		}
	}
	if err := c.Etcd.Start(); err != nil {
		t.Fatal(err)
	}
	c.waitState(cluster.StateHealthy, 15*time.Second)
	for i := range c.Nodes {
		if st := c.status(i); st.Changes != before[i] {
			t.Errorf("node %d: the resync sent %d commands, want none (nothing changed)", i, st.Changes-before[i])
		}
	}
	if st := s.Stats(); st.Err != nil || st.Rounds == 0 {
		t.Errorf("flow through the VIP across the outage: %+v", st)
	}

	// Node 2 restarts; the service is deleted while it is down.
	c.Nodes[2].Sup.Stop(5 * time.Second)
	if _, err := c.cli("service", "del", vip); err != nil {
		t.Fatal(err)
	}
	c.waitService(vip, false, 5*time.Second, 0, 1)
	c.start(2)
	c.waitService(vip, false, 5*time.Second, 2)
}
