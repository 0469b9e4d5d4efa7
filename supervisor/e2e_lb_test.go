package supervisor_test

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/lab"
)

// TestPrivilegedLBWeightedShares: 3000 connections per case through a VIP;
// each backend's share is within 5 points of its weight's share.
func TestPrivilegedLBWeightedShares(t *testing.T) {
	e2e.Modes(t, lbWeightedShares)
}

func lbWeightedShares(t *testing.T, sockLB bool) {
	env := lbEnvMode(t, sockLB)
	cases := []struct {
		alg     string
		weights []int
	}{
		{"maglev", []int{1, 1, 1}}, {"random", []int{1, 1, 1}},
		{"maglev", []int{1, 2, 3}}, {"random", []int{1, 2, 3}},
	}
	for i, c := range cases {
		vip := fmt.Sprintf("10.96.0.%d:80", 10+i)
		addService(t, env, vip, c.alg, c.weights...)
		total := 0
		for _, w := range c.weights {
			total += w
		}
		counts := shares(t, env, vip, 3000)
		for j, w := range webs {
			got := 100 * float64(counts[w]) / 3000
			want := 100 * float64(c.weights[j]) / float64(total)
			if math.Abs(got-want) > 5 {
				t.Errorf("%s %v: %s got %.1f%%, want %.1f%% ± 5", c.alg, c.weights, w, got, want)
			}
		}
		t.Logf("%s weights %v: %v", c.alg, c.weights, counts)
	}
}

// TestPrivilegedLBMaglevConsistency: the same 5-tuples reach the same
// backends across table rebuilds; removing a backend moves only its flows
// plus at most 1% of the others, in the kernel's table and on real flows.
func TestPrivilegedLBMaglevConsistency(t *testing.T) {
	env := lbEnv(t)
	const vipS = "10.96.0.20:80"
	vip := netip.MustParseAddrPort(vipS)
	addService(t, env, vipS, "maglev")
	svc := service(t, env, vipS+"/tcp")
	id2name := names(env, svc)
	client := env.Lab.Pods["client"].IP
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// This test pins the per-packet hash of 5-tuples; with socket LB on,
	// its connections still take the per-packet path.
	if env.SockLB {
		if err := env.Lab.LeaveCgroup(); err != nil {
			t.Fatal(err)
		}
	}

	const flows = 600
	round := func(label string) map[int]string {
		t.Helper()
		mustCLI(t, env, "ct", "flush") // forget the service entries of the last round
		got := map[int]string{}
		for i := 0; i < flows; i++ {
			port := 20000 + i
			name, err := ask(ctx, env, vipS, port)
			if err != nil {
				t.Fatalf("%s: port %d: %v", label, port, err)
			}
			got[port] = name
		}
		return got
	}
	table0, inner0 := maglevTable(t, env, svc.ID)
	first := round("first")
	for port, name := range first {
		if want := id2name[predict(table0, client, port, vip)]; name != want {
			t.Fatalf("port %d reached %s, the kernel's table says %s", port, name, want)
		}
	}

	// Rebuild with unchanged backends: a new table elsewhere, the same content.
	mustCLI(t, env, "lb", "service", "set-algorithm", vipS+"/tcp", "random")
	mustCLI(t, env, "lb", "service", "set-algorithm", vipS+"/tcp", "maglev")
	table1, inner1 := maglevTable(t, env, svc.ID)
	if inner1 == inner0 {
		t.Fatalf("table was not rebuilt (still at chunk %d)", inner0)
	}
	for i := range table0 {
		if table0[i] != table1[i] {
			t.Fatalf("rebuilt table differs at %d", i)
		}
	}
	for port, name := range round("after rebuild") {
		if first[port] != name {
			t.Errorf("port %d moved %s -> %s across a rebuild", port, first[port], name)
		}
	}

	// Remove web3.
	mustCLI(t, env, "lb", "backend", "del", vipS+"/tcp", env.Lab.Pods["web3"].IP.String()+":8080")
	table2, _ := maglevTable(t, env, svc.ID)
	others, movedSlots := 0, 0
	for i := range table0 {
		if id2name[table0[i]] == "web3" {
			continue
		}
		others++
		if table2[i] != table0[i] {
			movedSlots++
		}
	}
	if pct := 100 * float64(movedSlots) / float64(others); pct > 1 {
		t.Errorf("table: %.2f%% of entries not on web3 moved, want <= 1%%", pct)
	} else {
		t.Logf("table: %d of %d entries not on web3 moved (%.2f%%)", movedSlots, others, pct)
	}
	onOthers, moved := 0, 0
	for port, name := range round("after removal") {
		if name == "web3" {
			t.Fatalf("port %d still reached the removed backend", port)
		}
		if first[port] == "web3" {
			continue
		}
		onOthers++
		if name != first[port] {
			moved++
		}
		if want := id2name[predict(table2, client, port, vip)]; name != want {
			t.Errorf("port %d reached %s, the kernel's table says %s", port, name, want)
		}
	}
	if pct := 100 * float64(moved) / float64(onOthers); pct > 1 {
		t.Errorf("flows: %d of %d flows not on web3 moved (%.2f%%), want <= 1%%", moved, onOthers, pct)
	} else {
		t.Logf("flows: %d of %d flows not on web3 moved", moved, onOthers)
	}
}

// vipStream dials the VIP from the client, reads the backend's name and
// starts an echo stream on the connection.
func vipStream(t *testing.T, env *e2e.Env, vip string) (*lab.Stream, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := env.Lab.Pods["client"].Dial(ctx, "tcp", vip)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	name, err := br.ReadString('\n')
	if err != nil || br.Buffered() != 0 {
		t.Fatalf("greeting from %s: %q %v", vip, name, err)
	}
	conn.SetReadDeadline(time.Time{})
	s := lab.StreamOn(conn, 256, 20*time.Millisecond)
	t.Cleanup(func() { s.Stop() })
	return s, strings.TrimSpace(name)
}

// TestPrivilegedLBRuntimeSwap: 50 long-lived connections exchange data while
// the service goes maglev -> random -> maglev and the lb plugin is killed and
// restarted; every one stays up on its backend without losing a byte, and new
// connections follow the algorithm of the moment.
func TestPrivilegedLBRuntimeSwap(t *testing.T) {
	e2e.Modes(t, lbRuntimeSwap)
}

func lbRuntimeSwap(t *testing.T, sockLB bool) {
	env := lbEnvMode(t, sockLB)
	const vipS = "10.96.0.30:80"
	vip := netip.MustParseAddrPort(vipS)
	addService(t, env, vipS, "maglev")
	svc := service(t, env, vipS+"/tcp")
	id2name := names(env, svc)
	client := env.Lab.Pods["client"].IP

	streams := make([]*lab.Stream, 50)
	backends := make([]string, 50)
	for i := range streams {
		streams[i], backends[i] = vipStream(t, env, vipS)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// agreement is the share of 100 new connections whose backend is the one
	// the live Maglev table predicts for their tuple.
	table, _ := maglevTable(t, env, svc.ID) // the backends never change, so neither does the table
	agreement := func(base int) float64 {
		hit := 0
		env.PerPacket(func() { // the prediction is of a 5-tuple
			for i := 0; i < 100; i++ {
				name, err := ask(ctx, env, vipS, base+i)
				if err != nil {
					t.Fatal(err)
				}
				if name == id2name[predict(table, client, base+i, vip)] {
					hit++
				}
			}
		})
		return float64(hit) / 100
	}

	if a := agreement(30000); a != 1 {
		t.Errorf("maglev: %.0f%% of new connections followed the table, want all", 100*a)
	}
	mustCLI(t, env, "lb", "service", "set-algorithm", vipS+"/tcp", "random")
	if a := agreement(30100); a > 0.7 {
		t.Errorf("random: %.0f%% of new connections matched the Maglev table; random should spread them", 100*a)
	}
	mustCLI(t, env, "lb", "service", "set-algorithm", vipS+"/tcp", "maglev")
	lbPid := env.PluginStatus("lb").Pid
	syscall.Kill(lbPid, syscall.SIGKILL)
	waitFor(t, "lb plugin back", 5*time.Second, func() bool {
		p := env.PluginStatus("lb")
		return p.Pid != lbPid && p.Healthy
	})
	if got := service(t, env, vipS+"/tcp"); got.Algorithm != "maglev" || len(got.Backends) != 3 {
		t.Fatalf("service after lb restart: %+v", got)
	}
	if again, _ := maglevTable(t, env, svc.ID); fmt.Sprint(again) != fmt.Sprint(table) {
		t.Fatal("Maglev table differs after the swaps and the lb restart")
	}
	if a := agreement(30200); a != 1 {
		t.Errorf("maglev after restart: %.0f%% followed the table, want all", 100*a)
	}
	time.Sleep(500 * time.Millisecond)
	for i, s := range streams {
		st := s.Stop()
		if st.Err != nil {
			t.Errorf("connection %d (on %s) broke: %v", i, backends[i], st.Err)
		}
		if st.MaxGap > time.Second {
			t.Errorf("connection %d stalled %s", i, st.MaxGap)
		}
		if st.Rounds < 20 {
			t.Errorf("connection %d made only %d round trips", i, st.Rounds)
		}
	}
}

// TestPrivilegedLBBackendRemovalLeavesOthers: removing a backend while
// connections are open leaves connections to the other backends untouched;
// services survive a supervisor restart.
func TestPrivilegedLBBackendRemovalLeavesOthers(t *testing.T) {
	e2e.Modes(t, lbBackendRemovalLeavesOthers)
}

func lbBackendRemovalLeavesOthers(t *testing.T, sockLB bool) {
	env := lbEnvMode(t, sockLB)
	const vipS = "10.96.0.40:80"
	addService(t, env, vipS, "random")
	var streams []*lab.Stream
	var on []string
	for i := 0; i < 30; i++ {
		s, name := vipStream(t, env, vipS)
		streams, on = append(streams, s), append(on, name)
	}
	mustCLI(t, env, "lb", "backend", "del", vipS+"/tcp", env.Lab.Pods["web2"].IP.String()+":8080")
	time.Sleep(time.Second)
	kept := 0
	for i, s := range streams {
		st := s.Stop()
		if on[i] == "web2" {
			continue
		}
		kept++
		if st.Err != nil || st.MaxGap > time.Second {
			t.Errorf("connection %d to %s disturbed by removing web2: %+v", i, on[i], st)
		}
	}
	if kept == 0 {
		t.Fatal("no connection landed on web1 or web3")
	}

	before := listServices(t, env)
	env.Sup.Kill(syscall.SIGKILL)
	env.Sup.Wait(5 * time.Second)
	env.StartSupervisor(env.PluginFlag("ct"), env.PluginFlag("lb"))
	after := listServices(t, env)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("services changed over a supervisor restart:\n%v\n%v", before, after)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if name, err := ask(ctx, env, vipS, 0); err != nil || name == "web2" {
		t.Errorf("after restart: %q %v", name, err)
	}
}

// TestPrivilegedLBBadInputChangesNothing: bad VIPs, ports, protocols,
// weights, algorithms and table sizes are refused with a clear error.
func TestPrivilegedLBBadInputChangesNothing(t *testing.T) {
	env := lbEnv(t)
	ok := backend(env, "web1", 1)
	mustCLI(t, env, "lb", "service", "add", "10.96.0.50:80/tcp", "--backend", ok)
	before := fmt.Sprint(listServices(t, env))
	bad := [][]string{
		{"lb", "service", "add", "10.96.0.300:80/tcp", "--backend", ok},
		{"lb", "service", "add", "10.96.0.51:0/tcp", "--backend", ok},
		{"lb", "service", "add", "10.96.0.51:70000/tcp", "--backend", ok},
		{"lb", "service", "add", "10.96.0.51:80/sctp", "--backend", ok},
		{"lb", "service", "add", "10.96.0.51:80/tcp", "--backend", "10.240.2.2:8080,weight=0"},
		{"lb", "service", "add", "10.96.0.51:80/tcp", "--backend", "10.240.2.2:8080,weight=-3"},
		{"lb", "service", "add", "10.96.0.51:80/tcp", "--backend", ok, "--algorithm", "roundrobin"},
		{"lb", "service", "add", "10.96.0.51:80/tcp", "--backend", ok, "--maglev-table-size", "1000"},
		{"lb", "service", "set-algorithm", "10.96.0.50:80/tcp", "fastest"},
		{"lb", "service", "del", "10.96.0.99:80/tcp"},
		{"lb", "backend", "add", "10.96.0.50:80/tcp", "10.240.2.2:99999"},
	}
	for _, args := range bad {
		out, err := env.CLI(args...)
		if err == nil {
			t.Errorf("%v accepted: %s", args, out)
			continue
		}
		t.Logf("%v: %v", args[2:], lastLine(err.Error()))
	}
	if after := fmt.Sprint(listServices(t, env)); after != before {
		t.Errorf("bad input changed the services:\n%s\n%s", before, after)
	}
}
