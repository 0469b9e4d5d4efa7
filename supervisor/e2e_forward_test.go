package supervisor_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/entry"
	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/plugins/ct"
	"github.com/hotpath/hotpath/plugins/lb"
	"github.com/hotpath/hotpath/supervisor"
)

// fwdEnv is a lab with a client and a backend "web" (TCP echo on 8080),
// the supervisor running ct and lb with socket LB and direct redirects on
// or off, and the service 10.96.0.20:80 -> web:8080.
func fwdEnv(t *testing.T, sockLB, redirect bool) *e2e.Env {
	env := e2e.NewMode(t, sockLB, lab.Options{Pods: []string{"client", "web"}})
	ctRaw, _ := json.Marshal(ct.DefaultConfig())
	lbRaw, _ := json.Marshal(lb.DefaultConfig())
	env.WriteConfig(supervisor.Config{DirectRedirect: &redirect, Plugins: []supervisor.PluginConfig{
		{Name: "ct", Path: env.Bin + "/hotpath-ct", Config: ctRaw},
		{Name: "lb", Path: env.Bin + "/hotpath-lb", Config: lbRaw},
	}})
	env.StartSupervisor()
	web := env.Lab.Pods["web"]
	if _, err := lab.EchoServer(web.NS, web.IP.String()+":8080"); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, env, "lb", "service", "add", "10.96.0.20:80/tcp", "--backend", web.IP.String()+":8080")
	return env
}

// fwdStats reads the forward stage's counters from their pin.
func fwdStats(t *testing.T, env *e2e.Env) map[string]uint64 {
	t.Helper()
	st, err := entry.ReadStats(pinnedMap(t, filepath.Join(env.Lab.BPFFS, "entry", "fwd_stats")))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// passes is what the datapath counted: pipelines that ended at ingress
// (under any reason) and forwarded packets at egress, and the forward
// stage's counters.
type passes struct {
	ingress, egress uint64
	fwd             map[string]uint64
}

func snapshot(t *testing.T, env *e2e.Env) passes {
	t.Helper()
	c := counters(t, env)
	var in uint64
	for _, m := range c {
		in += m[0].Packets
	}
	return passes{
		ingress: in,
		egress:  c[abi.AbiHpReasonHP_R_FORWARD][1].Packets,
		fwd:     fwdStats(t, env),
	}
}

func (p passes) since(q passes) passes {
	d := passes{ingress: p.ingress - q.ingress, egress: p.egress - q.egress, fwd: map[string]uint64{}}
	for k, v := range p.fwd {
		d.fwd[k] = v - q.fwd[k]
	}
	return d
}

// echoes sends n 64 KiB echoes from ns to each address, each on a new connection.
func echoes(t *testing.T, ns *lab.NS, n int, addrs ...string) {
	t.Helper()
	payload := make([]byte, 64<<10)
	rand.Read(payload)
	for _, a := range addrs {
		for i := 0; i < n; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := ns.Echo(ctx, "tcp", a, payload)
			cancel()
			if err != nil {
				t.Fatalf("echo %d to %s: %v", i, a, err)
			}
		}
	}
	time.Sleep(300 * time.Millisecond) // the connections' last FINs and ACKs
}

// TestPrivilegedDatapathOnePassPerNode: a forwarded packet runs the
// pipeline once, at the ingress hook where it enters the node; pod -> pod
// and pod -> VIP -> pod go straight into the destination pod
// (bpf_redirect_peer), so the node's end of its veth never sees them; the
// node's own traffic still gets the pipeline at egress; an unresolved
// neighbour falls back to the kernel's forwarding, still one pass.
func TestPrivilegedDatapathOnePassPerNode(t *testing.T) {
	e2e.Modes(t, datapathOnePassPerNode)
}

func datapathOnePassPerNode(t *testing.T, sockLB bool) {
	env := fwdEnv(t, sockLB, true)
	client, web := env.Lab.Pods["client"], env.Lab.Pods["web"]
	direct := web.IP.String() + ":8080"
	echoes(t, client.NS, 1, direct, "10.96.0.20:80") // neighbours resolved

	t.Run("pod to pod and pod to VIP to pod: redirected into the pod, counted once", func(t *testing.T) {
		before := snapshot(t, env)
		echoes(t, client.NS, 5, direct, "10.96.0.20:80")
		d := snapshot(t, env).since(before)
		t.Logf("forwarded at ingress %d, at egress %d; forward stage %v", d.ingress, d.egress, d.fwd)
		// 10 connections of 64 KiB each way: well over 10 packets per
		// connection and direction.
		if d.fwd["peer"] < 200 {
			t.Errorf("%d packets redirected into a pod, want at least 200", d.fwd["peer"])
		}
		if d.egress != 0 || d.fwd["egress_seen"] != 0 {
			t.Errorf("egress hooks ran %d pipelines and passed %d processed packets, want 0 and 0 (peer redirects skip the node's end of the veth)",
				d.egress, d.fwd["egress_seen"])
		}
		// Counters are read one after the other: allow for a stray packet.
		if d.ingress+5 < d.fwd["peer"] {
			t.Errorf("%d packets counted at ingress, fewer than the %d redirected", d.ingress, d.fwd["peer"])
		}
	})

	t.Run("the node's own traffic runs the pipeline at egress", func(t *testing.T) {
		before := snapshot(t, env)
		echoes(t, env.Lab.Node, 1, direct)
		d := snapshot(t, env).since(before)
		if d.egress == 0 {
			t.Fatalf("no pipeline ran at egress for the node's own connection (%+v)", d)
		}
		found := false
		for _, r := range env.CT() {
			if r.Proto == "TCP" && r.Dst == direct && r.Direction == "IN" {
				found = true
			}
		}
		if !found {
			t.Errorf("no CT entry first seen at egress (IN) for the node's connection to %s", direct)
		}
	})

	t.Run("an unresolved neighbour is left to the kernel, still one pass", func(t *testing.T) {
		if out, err := env.Lab.Node.Exec("ip", "neigh", "flush", "dev", web.HostIf); err != nil {
			t.Fatalf("flush neighbours: %v: %s", err, out)
		}
		before := snapshot(t, env)
		echoes(t, client.NS, 1, direct)
		d := snapshot(t, env).since(before)
		if d.fwd["no_neigh"] == 0 || d.fwd["egress_seen"] == 0 {
			t.Errorf("forward stage %v: want no_neigh and egress_seen counted (the kernel forwarded, the egress hook passed it)", d.fwd)
		}
		if d.egress != 0 {
			t.Errorf("%d pipelines ran at egress for forwarded packets, want 0", d.egress)
		}
	})
}

// TestPrivilegedDatapathRedirectOff: with direct redirects off in the
// config the kernel forwards every packet, and each still runs the pipeline
// once.
func TestPrivilegedDatapathRedirectOff(t *testing.T) {
	e2e.Modes(t, datapathRedirectOff)
}

func datapathRedirectOff(t *testing.T, sockLB bool) {
	env := fwdEnv(t, sockLB, false)
	client, web := env.Lab.Pods["client"], env.Lab.Pods["web"]
	before := snapshot(t, env)
	echoes(t, client.NS, 3, web.IP.String()+":8080", "10.96.0.20:80")
	d := snapshot(t, env).since(before)
	t.Logf("forwarded at ingress %d, at egress %d; forward stage %v", d.ingress, d.egress, d.fwd)
	if d.fwd["peer"] != 0 || d.fwd["neigh"] != 0 {
		t.Errorf("redirected with direct redirects off: %v", d.fwd)
	}
	if d.fwd["off"] < 100 || d.fwd["egress_seen"] < d.fwd["off"] {
		t.Errorf("forward stage %v: want every packet left to the kernel (off) and passed at egress (egress_seen)", d.fwd)
	}
	if d.egress != 0 {
		t.Errorf("%d pipelines ran at egress for forwarded packets, want 0", d.egress)
	}
	st, lo, hi := datapathShow(t, env)
	if st.DirectRedirect || st.Configured {
		t.Errorf("datapath show: direct redirects %v (configured %v), want off", st.DirectRedirect, st.Configured)
	}
	consistent(t, st, lo, hi)
}

// fwdRouteReader reads the forward stage's routing state (struct fwd_route
// of bpf/entry.c) from its pin, opened once for the polling loops.
func fwdRouteReader(t *testing.T, env *e2e.Env) func() (epoch, off uint32) {
	m := pinnedMap(t, filepath.Join(env.Lab.BPFFS, "entry", "fwd_route"))
	return func() (uint32, uint32) {
		t.Helper()
		var st struct{ Epoch, Off uint32 }
		if err := m.Lookup(uint32(0), &st); err != nil {
			t.Fatal(err)
		}
		return st.Epoch, st.Off
	}
}

// TestPrivilegedDatapathFollowsRouting: the forward stage remembers next
// hops, and the supervisor makes it forget them on every routing change of
// the node: a pod whose route is withdrawn is no longer reached (its
// clients get the kernel's unreachable at once, not the remembered hop),
// and comes back with its route. A routing rule of the node's own turns
// remembering off until it is gone.
func TestPrivilegedDatapathFollowsRouting(t *testing.T) {
	e2e.Modes(t, datapathFollowsRouting)
}

func datapathFollowsRouting(t *testing.T, sockLB bool) {
	env := fwdEnv(t, sockLB, true)
	client, web := env.Lab.Pods["client"], env.Lab.Pods["web"]
	node := env.Lab.Node
	fwdRoute := fwdRouteReader(t, env)
	echoes(t, client.NS, 2, web.IP.String()+":8080", "10.96.0.20:80")
	if st := fwdStats(t, env); st["peer"] == 0 {
		t.Fatalf("nothing redirected into the pod: %v", st)
	}
	waitEpoch := func(what string, after uint32) uint32 {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if e, _ := fwdRoute(); e != after {
				return e
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%s: next hops not forgotten within 5 s (epoch still %d)", what, after)
		return 0
	}

	epoch, _ := fwdRoute()
	route := web.IP.String() + "/32"
	if _, err := node.Exec("ip", "route", "add", "unreachable", route); err != nil {
		t.Fatal(err)
	}
	epoch = waitEpoch("route withdrawn", epoch)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	err := client.Echo(ctx, "tcp", web.IP.String()+":8080", []byte("x"))
	cancel()
	if err == nil {
		t.Fatalf("echo to %s succeeded with its route unreachable", web.IP)
	}
	if _, err := node.Exec("ip", "route", "del", "unreachable", route); err != nil {
		t.Fatal(err)
	}
	epoch = waitEpoch("route back", epoch)
	echoes(t, client.NS, 1, web.IP.String()+":8080", "10.96.0.20:80")

	if _, err := node.Exec("ip", "rule", "add", "fwmark", "0x7", "table", "100"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, off := fwdRoute(); off != 1; _, off = fwdRoute() {
		if time.Now().After(deadline) {
			t.Fatal("a routing rule of the node's own did not turn remembered hops off within 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	echoes(t, client.NS, 1, web.IP.String()+":8080")
	if _, err := node.Exec("ip", "rule", "del", "fwmark", "0x7", "table", "100"); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for _, off := fwdRoute(); off != 0; _, off = fwdRoute() {
		if time.Now().After(deadline) {
			t.Fatal("remembered hops still off 5 s after the rule went")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
