package nat_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/lab"
)

// flow is one TCP connection from a pod to the external peer server.
type flow struct {
	pod   *lab.Pod
	local int
	conn  net.Conn
	rd    *bufio.Reader
	seen  netip.AddrPort // the client as the server saw it
}

// dialFlow connects from pod (from local port local, 0: any) and reads the
// server's greeting.
func dialFlow(ctx context.Context, pod *lab.Pod, local int, addr string) (*flow, error) {
	var c net.Conn
	err := pod.NS.Do(func() (err error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{Port: local}}
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	f := &flow{pod: pod, local: local, conn: c, rd: bufio.NewReader(c)}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := f.rd.ReadString('\n')
	if err == nil {
		f.seen, err = netip.ParseAddrPort(strings.TrimSpace(line))
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("greeting from %s to pod %s: %w", addr, pod.Name, err)
	}
	c.SetReadDeadline(time.Time{})
	return f, nil
}

// echo sends a message naming the flow's pod and port and checks that the
// very same bytes come back on this connection.
func (f *flow) echo() error {
	msg := fmt.Sprintf("%s:%d:%s\n", f.pod.Name, f.local, f.seen)
	f.conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(f.conn, msg); err != nil {
		return err
	}
	got, err := f.rd.ReadString('\n')
	if err != nil {
		return err
	}
	if got != msg {
		return fmt.Errorf("pod %s port %d got %q, sent %q", f.pod.Name, f.local, got, msg)
	}
	return nil
}

// openFlows opens one flow per (pod, local port) pair, at most par dials at
// a time, and returns the flows that opened and the errors of those that
// did not.
func openFlows(ctx context.Context, pods []*lab.Pod, locals [][]int, addr string, par int) ([]*flow, []error) {
	var (
		mu    sync.Mutex
		flows []*flow
		errs  []error
		wg    sync.WaitGroup
		sem   = make(chan struct{}, par)
	)
	for i, pod := range pods {
		for _, local := range locals[i] {
			wg.Add(1)
			sem <- struct{}{}
			go func(pod *lab.Pod, local int) {
				defer wg.Done()
				defer func() { <-sem }()
				f, err := dialFlow(ctx, pod, local, addr)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				flows = append(flows, f)
			}(pod, local)
		}
	}
	wg.Wait()
	return flows, errs
}

func closeFlows(flows []*flow) {
	for _, f := range flows {
		f.conn.Close()
	}
}

// checkFlows: every flow left with the node's address and a port of
// lo..hi no other flow has, and its echo came back to it.
func checkFlows(t *testing.T, flows []*flow, lo, hi uint16) {
	t.Helper()
	ports := map[uint16]*flow{}
	for _, f := range flows {
		if f.seen.Addr() != lab.UplinkIP || !inRange(f.seen.Port(), lo, hi) {
			t.Errorf("pod %s port %d: server saw %s, want %s:%d-%d", f.pod.Name, f.local, f.seen, lab.UplinkIP, lo, hi)
		}
		if g := ports[f.seen.Port()]; g != nil {
			t.Errorf("translated port %d given to pod %s port %d and pod %s port %d", f.seen.Port(), g.pod.Name, g.local, f.pod.Name, f.local)
		}
		ports[f.seen.Port()] = f
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(flows))
	for _, f := range flows {
		wg.Add(1)
		go func(f *flow) {
			defer wg.Done()
			if err := f.echo(); err != nil {
				errs <- err
			}
		}(f)
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 5 {
			t.Errorf("echo: %v", err)
		}
	}
	if n > 0 {
		t.Errorf("%d of %d flows failed their echo", n, len(flows))
	}
}

func portsFrom(first, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = first + i
	}
	return out
}

// TestPrivilegedMasquerade2000FlowsSameSourcePorts: 2000 concurrent TCP
// flows from 3 pods that use the very same source ports get unique
// translated ports, and every reply reaches the pod and socket it belongs to.
func TestPrivilegedMasquerade2000FlowsSameSourcePorts(t *testing.T) {
	env := natEnv(t, nil, "", "a", "b", "c")
	env.StartSupervisor()
	if _, err := lab.ServePeer(env.Lab.External, ext(8080)); err != nil {
		t.Fatal(err)
	}
	pods := []*lab.Pod{env.Lab.Pods["a"], env.Lab.Pods["b"], env.Lab.Pods["c"]}
	// The same 667 source ports in every pod (666 in the last): 2000 flows.
	locals := [][]int{portsFrom(41000, 667), portsFrom(41000, 667), portsFrom(41000, 666)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	flows, errs := openFlows(ctx, pods, locals, ext(8080), 64)
	defer closeFlows(flows)
	if len(errs) > 0 {
		t.Fatalf("%d of 2000 flows failed to open, first: %v", len(errs), errs[0])
	}
	checkFlows(t, flows, 32768, 60999)
	natSrc := map[string]bool{}
	for _, r := range natList(t, env) {
		if r.Proto == "TCP" {
			natSrc[r.NatSrc] = true
		}
	}
	if len(natSrc) != 2000 {
		t.Errorf("nat list: %d distinct translated TCP sources, want 2000", len(natSrc))
	}
	st := natStats(t, env)
	if st.Exhausted != 0 || st.Allocations != 2000 || st.Mappings != 2000 {
		t.Errorf("nat stats %+v: want 2000 allocations and mappings, no exhaustion", st)
	}
	t.Logf("2000 flows: %d probe collisions", st.Collisions)
}

// TestPrivilegedMasqueradeExhaustionAndReuse: with 100 ports, one of them
// a port the node listens on, 150 concurrent flows leave 51 dropped and
// counted as exhaustion, none delivered to a wrong pod, the listening port
// never handed out; once the 99 close, their ports are handed out again
// within the close lifetime.
func TestPrivilegedMasqueradeExhaustionAndReuse(t *testing.T) {
	const closeLife = 2 * time.Second
	env := natEnv(t, map[string]any{"port_range": "40000-40099"}, `{"lifetimes": {"close": "2s"}}`, "a", "b")
	// A service of the node itself listens inside the range: its port is
	// never handed out, so 99 ports are left.
	ln, err := env.Lab.Node.Listen("tcp", ":40050")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	env.StartSupervisor()
	if _, err := lab.ServePeer(env.Lab.External, ext(8080)); err != nil {
		t.Fatal(err)
	}
	pods := []*lab.Pod{env.Lab.Pods["a"], env.Lab.Pods["b"]}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	flows, errs := openFlows(ctx, pods, [][]int{portsFrom(42000, 75), portsFrom(42000, 75)}, ext(8080), 150)
	cancel()
	if len(flows) != 99 || len(errs) != 51 {
		closeFlows(flows)
		t.Fatalf("%d flows opened, %d failed: want 99 and 51 (100 ports, one the node listens on)", len(flows), len(errs))
	}
	checkFlows(t, flows, 40000, 40099)
	for _, f := range flows {
		if f.seen.Port() == 40050 {
			t.Errorf("pod %s port %d was given the node's listening port 40050", f.pod.Name, f.local)
		}
	}
	st := natStats(t, env)
	drops := dropped(t, env, abi.AbiHpReasonHP_R_NAT_EXHAUSTED)
	if st.Exhausted < 51 || drops < 51 || st.Allocations != 99 {
		t.Errorf("after 150 flows on 99 free ports: stats %+v, %d exhaustion drops: want >= 51 drops, 99 allocations", st, drops)
	}
	waitFor(t, "the GC pass the exhaustion signal starts", 5*time.Second, func() bool { return natStats(t, env).GC.Signals > 0 })

	closeFlows(flows)
	closed := time.Now()
	// Each port is free once its flow's CT entry has passed the close
	// lifetime (whole seconds on the datapath clock: up to one more).
	var again []*flow
	for round := 0; time.Since(closed) < closeLife+6*time.Second && len(again) < 99; round++ {
		time.Sleep(250 * time.Millisecond)
		left := 99 - len(again)
		base := 43000 + round*100 // fresh source ports each round
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		more, _ := openFlows(ctx, pods, [][]int{portsFrom(base, left/2), portsFrom(base+50, left-left/2)}, ext(8080), 100)
		cancel()
		again = append(again, more...)
	}
	defer closeFlows(again)
	took := time.Since(closed)
	if len(again) != 99 {
		t.Fatalf("%s after closing 99 flows only %d of 99 new flows got a port (close lifetime %s)", took, len(again), closeLife)
	}
	checkFlows(t, again, 40000, 40099)
	// Whole seconds on the datapath clock add up to 1s; polling (500ms
	// dial timeouts, 250ms pauses) and a loaded machine up to 2s more.
	if took > closeLife+3*time.Second {
		t.Errorf("ports free again only %s after their flows closed, close lifetime %s", took.Round(time.Millisecond), closeLife)
	}
	t.Logf("all 99 ports in use again %s after their flows closed (close lifetime %s)", took.Round(time.Millisecond), closeLife)
}

// TestPrivilegedMasqueradeChurn: 20000 short connections through 1000 ports
// without one exhaustion drop, because closed flows free their ports within
// the close lifetime (1s here), not when some GC comes by.
func TestPrivilegedMasqueradeChurn(t *testing.T) {
	env := natEnv(t, map[string]any{"port_range": "40000-40999", "gc_interval": "1h"}, `{"lifetimes": {"close": "1s"}, "gc": {"start": "1h", "min": "1h", "max": "2h"}}`, "a", "b", "c")
	env.StartSupervisor()
	if _, err := lab.ServePeer(env.Lab.External, ext(8080)); err != nil {
		t.Fatal(err)
	}
	pods := []*lab.Pod{env.Lab.Pods["a"], env.Lab.Pods["b"], env.Lab.Pods["c"]}
	const total, workers = 20000, 12
	// A closed flow's port is free 1-2s after the close (1s lifetime on a
	// whole-second clock): 300 new flows/s need at most ~600 of the 1000.
	const rate = 300
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	jobs := make(chan int)
	go func() {
		for i := 0; i < total; i++ {
			<-tick.C
			jobs <- i
		}
		close(jobs)
	}()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		fail []error
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(pod *lab.Pod) {
			defer wg.Done()
			for range jobs {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				f, err := dialFlow(ctx, pod, 0, ext(8080))
				cancel()
				if err == nil {
					err = f.echo()
					f.conn.Close()
				}
				if err != nil {
					mu.Lock()
					fail = append(fail, err)
					mu.Unlock()
				}
			}
		}(pods[w%len(pods)])
	}
	start := time.Now()
	wg.Wait()
	if len(fail) > 0 {
		t.Errorf("%d of %d connections failed, first: %v", len(fail), total, fail[0])
	}
	st := natStats(t, env)
	if n := dropped(t, env, abi.AbiHpReasonHP_R_NAT_EXHAUSTED); n != 0 || st.Exhausted != 0 {
		t.Errorf("%d exhaustion drops (stats %+v)", n, st)
	}
	if st.Allocations < total {
		t.Errorf("%d allocations for %d connections", st.Allocations, total)
	}
	t.Logf("%d connections in %s through 1000 ports: %d ports taken over from closed flows, %d probe collisions, GC passes %d",
		total, time.Since(start).Round(time.Second), st.Reclaimed, st.Collisions, st.GC.Runs)
}

// TestPrivilegedMasqueradeExcludesPortsListenedOnLater: a service the node
// starts after the plugin is running is excluded within listen_refresh.
func TestPrivilegedMasqueradeExcludesPortsListenedOnLater(t *testing.T) {
	env := natEnv(t, map[string]any{"port_range": "40000-40001", "listen_refresh": "200ms"}, "", "a", "b")
	env.StartSupervisor()
	if _, err := lab.ServePeer(env.Lab.External, ext(8080)); err != nil {
		t.Fatal(err)
	}
	ln, err := env.Lab.Node.Listen("tcp", ":40000")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	time.Sleep(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	flows, errs := openFlows(ctx, []*lab.Pod{env.Lab.Pods["a"], env.Lab.Pods["b"]}, [][]int{{44000}, {44000}}, ext(8080), 2)
	defer closeFlows(flows)
	if len(flows) != 1 || len(errs) != 1 || flows[0].seen.Port() != 40001 {
		t.Fatalf("%d flows (%v), %d failed: want one, on 40001 (40000 is the node's now)", len(flows), flows, len(errs))
	}
}
