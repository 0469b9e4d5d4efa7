package tunnel_test

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotpath/hotpath/lab"
)

// TestPrivilegedTunnelServiceAcrossNodes: a VIP on node A with one backend
// on A and one on B. Connections from a pod on A reach both; TCP and a
// connected UDP socket (which drops datagrams from any other source) only
// work when every reply comes back from the VIP, i.e. through A's reverse
// NAT after decapsulation.
func TestPrivilegedTunnelServiceAcrossNodes(t *testing.T) {
	c := newCluster(t, [2][]string{{"a", "a2"}, {"b"}})
	a, a2, b := c.m.Nodes[0].Pods["a"], c.m.Nodes[0].Pods["a2"], c.m.Nodes[1].Pods["b"]
	for _, p := range []*lab.Pod{a2, b} {
		if _, err := lab.ServeName(p.NS, addr(p.IP, 8080), p.Name); err != nil {
			t.Fatal(err)
		}
		if _, err := lab.UDPServeName(p.NS, addr(p.IP, 5353), p.Name); err != nil {
			t.Fatal(err)
		}
	}
	const vip = "10.96.0.10"
	c.cli(t, 0, "lb", "service", "add", vip+":80/tcp", "--algorithm", "random", "--backend", addr(a2.IP, 8080), "--backend", addr(b.IP, 8080))
	c.cli(t, 0, "lb", "service", "add", vip+":53/udp", "--algorithm", "random", "--backend", addr(a2.IP, 5353), "--backend", addr(b.IP, 5353))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, svc := range []struct{ network, addr string }{{"tcp", vip + ":80"}, {"udp", vip + ":53"}} {
		seen := map[string]int{}
		for range 40 {
			name, err := a.AskName(ctx, svc.network, svc.addr)
			if err != nil {
				t.Fatalf("%s %s from pod a: %v", svc.network, svc.addr, err)
			}
			seen[name]++
		}
		if seen["a2"] == 0 || seen["b"] == 0 || len(seen) != 2 {
			t.Errorf("%s %s: backends reached %v, want both a2 (node A) and b (node B)", svc.network, svc.addr, seen)
		}
	}
}

// crossStreams starts n verified echo streams from pod a (node A) to pod b
// (node B).
func crossStreams(t *testing.T, c *cluster, n int) []*lab.Stream {
	t.Helper()
	a, b := c.m.Nodes[0].Pods["a"], c.m.Nodes[1].Pods["b"]
	if _, err := lab.EchoServer(b.NS, addr(b.IP, 7100)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*lab.Stream
	for range n {
		s, err := lab.StartStream(ctx, a.NS, addr(b.IP, 7100), 512, 20*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Stop() })
		out = append(out, s)
	}
	return out
}

// checkStreams fails t for a broken stream, one that stopped moving, or
// one that stalled for more than maxGap.
func checkStreams(t *testing.T, what string, ss []*lab.Stream, before []int64, maxGap time.Duration) []int64 {
	t.Helper()
	now := make([]int64, len(ss))
	for i, s := range ss {
		st := s.Stats()
		now[i] = st.Rounds
		switch {
		case st.Err != nil:
			t.Errorf("%s: stream %d broke: %v", what, i, st.Err)
		case before != nil && st.Rounds <= before[i]:
			t.Errorf("%s: stream %d made no progress (%d rounds)", what, i, st.Rounds)
		case st.MaxGap > maxGap:
			t.Errorf("%s: stream %d stalled for %s", what, i, st.MaxGap)
		}
	}
	return now
}

// TestPrivilegedTunnelPluginChaos: 20 cross-node streams survive kill -9
// of the tunnel plugin on either node and two upgrades of it (one per
// node): routes live in the pinned map, programs stay in the pipeline.
func TestPrivilegedTunnelPluginChaos(t *testing.T) {
	c := newCluster(t, [2][]string{{"a"}, {"b"}})
	ss := crossStreams(t, c, 20)
	time.Sleep(500 * time.Millisecond)
	rounds := checkStreams(t, "start", ss, nil, 2*time.Second)
	for node := range c.envs {
		e := c.envs[node]
		before := e.PluginStatus("tunnel")
		if err := syscall.Kill(before.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, fmt.Sprintf("node %d: tunnel plugin back", node), 10*time.Second, func() bool {
			p := e.PluginStatus("tunnel")
			return p.Pid != before.Pid && p.Pid > 0 && p.Healthy
		})
		time.Sleep(300 * time.Millisecond)
		rounds = checkStreams(t, fmt.Sprintf("kill -9 on node %d", node), ss, rounds, 2*time.Second)
	}
	for node := range c.envs {
		e := c.envs[node]
		out := c.cli(t, node, "plugin", "upgrade", "tunnel", "--binary", e.Bin+"/hotpath-tunnel")
		if !strings.Contains(out, "generation") {
			t.Fatalf("node %d: upgrade: %s", node, out)
		}
		e.Remember(e.PluginStatus("tunnel").Pid)
		time.Sleep(300 * time.Millisecond)
		rounds = checkStreams(t, fmt.Sprintf("upgrade on node %d", node), ss, rounds, 2*time.Second)
	}
	var rs []struct{ CIDR string }
	c.envs[0].JSON(&rs, "tunnel", "list", "-o", "json")
	if len(rs) != 1 {
		t.Errorf("routes after restarts and upgrades: %+v, want the one route", rs)
	}
	for i, s := range ss {
		if st := s.Stop(); st.Err != nil || st.Bytes == 0 {
			t.Errorf("stream %d: %d bytes verified, error %v", i, st.Bytes, st.Err)
		}
	}
}

// TestPrivilegedTunnelSupervisorKill: kill -9 of node B's supervisor leaves
// its overlay device, links and programs in place: cross-node streams keep
// flowing and new connections still work; a new supervisor re-adopts the
// device.
func TestPrivilegedTunnelSupervisorKill(t *testing.T) {
	c := newCluster(t, [2][]string{{"a"}, {"b"}})
	ss := crossStreams(t, c, 20)
	time.Sleep(500 * time.Millisecond)
	rounds := checkStreams(t, "start", ss, nil, 2*time.Second)
	eb := c.envs[1]
	if err := eb.Sup.Kill(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := eb.Sup.Wait(5 * time.Second); err == nil {
		t.Log("supervisor exited")
	}
	time.Sleep(2 * time.Second)
	rounds = checkStreams(t, "node B supervisor killed", ss, rounds, 2*time.Second)
	a, b := c.m.Nodes[0].Pods["a"], c.m.Nodes[1].Pods["b"]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Echo(ctx, "tcp", addr(b.IP, 7100), payload(64<<10)); err != nil {
		t.Errorf("new connection a -> b without node B's supervisor: %v", err)
	}
	eb.StartSupervisor()
	time.Sleep(500 * time.Millisecond)
	checkStreams(t, "node B supervisor back", ss, rounds, 2*time.Second)
	st := eb.Status()
	found := false
	for _, l := range st.Adopted.LinksReopened {
		found = found || l == "hotpath_vxlan"
	}
	if !found {
		t.Errorf("restarted supervisor did not re-adopt the overlay device's links: %+v", st.Adopted)
	}
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
