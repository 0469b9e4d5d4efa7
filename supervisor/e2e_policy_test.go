package supervisor_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/monitor"
	"github.com/hotpath/hotpath/core/netpol"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/lab"
)

const policyPkg = "github.com/hotpath/hotpath/plugins/policy"

// x/a accepts TCP 80 and UDP 5353 from pods labelled role=client of its
// namespace; z/a is in another namespace and denied.
const e2ePolicy = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: clients-only, namespace: x}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from:
    - podSelector: {matchLabels: {role: client}}
    ports: [{port: 80}, {protocol: UDP, port: 5353}]
`

// policyEnv: pods xa (web), xb (client) in x, za (client) in z, the ct and
// policy plugins under a real supervisor, endpoints and the policy set
// through the CLI, an echo server on xa:80.
func policyEnv(t *testing.T) *e2e.Env {
	env := e2e.New(t, "xa", "xb", "za")
	env.StartSupervisor(env.PluginFlag("ct"), env.PluginFlag("policy"))
	for _, ep := range []struct{ pod, ns, label string }{{"xa", "x", "app=web"}, {"xb", "x", "role=client"}, {"za", "z", "role=client"}} {
		mustCLI(t, env, "endpoint", "add", env.Lab.Pods[ep.pod].IP.String(), "--namespace", ep.ns, "--label", ep.label)
	}
	f := filepath.Join(env.Lab.Dir, "policy.yaml")
	if err := os.WriteFile(f, []byte(e2ePolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, env, "policy", "apply", "-f", f)
	if _, err := lab.EchoServer(env.Lab.Pods["xa"].NS, env.Lab.Pods["xa"].IP.String()+":80"); err != nil {
		t.Fatal(err)
	}
	return env
}

// TestPrivilegedPolicyMonitorDrop: a denied connection shows up in `hotpath
// monitor --type drop -o json` with reason, tuple and both identities; an
// allowed one passes; a bad policy file changes nothing.
func TestPrivilegedPolicyMonitorDrop(t *testing.T) {
	env := policyEnv(t)
	xa, xb, za := env.Lab.Pods["xa"], env.Lab.Pods["xb"], env.Lab.Pods["za"]
	var eps []netpol.Endpoint
	env.JSON(&eps, "endpoint", "list")
	ids := map[string]uint32{}
	for _, e := range eps {
		ids[e.IP] = e.Identity
	}
	if len(ids) != 3 || ids[xb.IP.String()] == ids[za.IP.String()] {
		t.Fatalf("endpoints %+v: want 3, xb and za with different identities (namespaces differ)", eps)
	}

	log := filepath.Join(env.Lab.Dir, "monitor.log")
	mon, err := env.Lab.Start(env.Lab.Node, log, filepath.Join(env.Bin, "hotpath"),
		"--bpffs", env.Lab.BPFFS, "--state-dir", env.StateDir, "monitor", "--type", "drop", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Stop(2 * time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := xb.NS.Echo(ctx, "tcp", xa.IP.String()+":80", []byte("allowed")); err != nil {
		t.Fatalf("allowed connection: %v", err)
	}
	var found *monitor.Event
	for found == nil && ctx.Err() == nil {
		pctx, pcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		if err := za.NS.Echo(pctx, "tcp", xa.IP.String()+":80", []byte("denied")); err == nil {
			t.Fatal("denied connection got through")
		}
		pcancel()
		found = findDrop(t, log, za.IP.String(), xa.IP.String()+":80")
	}
	if found == nil {
		b, _ := os.ReadFile(log)
		t.Fatalf("no policy drop from %s in the monitor's output:\n%s", za.IP, b)
	}
	if f := monitorFlags(t, env); f != uint32(abi.AbiHpMonitorFlagHP_MON_DROP) {
		t.Errorf("config flags %#x while a drop monitor is connected, want the drop bit alone", f)
	}
	mon.Stop(2 * time.Second)
	waitFor(t, "monitor bits cleared after the monitor left", 5*time.Second, func() bool { return monitorFlags(t, env) == 0 })
	if found.SrcIdentity != ids[za.IP.String()] || found.DstIdentity != ids[xa.IP.String()] ||
		found.Stage != "policy" || found.Proto != "tcp" || found.Interface != za.HostIf || found.Dir != "ingress" {
		// One pass per node: xa's ingress policy is judged where the
		// packet enters the node, at za's device.
		t.Errorf("drop event %+v: want stage policy, tcp, at %s ingress, identities %d -> %d",
			*found, za.HostIf, ids[za.IP.String()], ids[xa.IP.String()])
	}

	// A file with one good and one bad document: refused whole, naming the
	// document and the field.
	bad := filepath.Join(env.Lab.Dir, "bad.yaml")
	os.WriteFile(bad, []byte(strings.Replace(e2ePolicy, "clients-only", "other", 1)+"---\n"+
		strings.Replace(e2ePolicy, "port: 80}", "port: http}", 1)), 0o600)
	_, err = env.CLI("policy", "apply", "-f", bad)
	if err == nil || !strings.Contains(err.Error(), "document 2") || !strings.Contains(err.Error(), "spec.ingress[0].ports[0].port") {
		t.Errorf("bad file: %v, want an error naming document 2 and spec.ingress[0].ports[0].port", err)
	}
	var ps []netpol.PolicyInfo
	env.JSON(&ps, "policy", "list")
	if len(ps) != 1 || ps[0].Name != "clients-only" {
		t.Errorf("policies after a refused apply: %+v, want clients-only alone", ps)
	}
}

// monitorFlags reads hp_config.flags from the pinned config map.
func monitorFlags(t *testing.T, env *e2e.Env) uint32 {
	t.Helper()
	m, err := ebpf.LoadPinnedMap(pin.Layout{Root: env.Lab.BPFFS}.Map(abi.MapConfig), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var cfg abi.Config
	if err := m.Lookup(uint32(0), &cfg); err != nil {
		t.Fatal(err)
	}
	// The monitor's bits only: the word also carries the supervisor's own
	// (HP_CFG_DIRECT_REDIRECT).
	return cfg.Flags & uint32(abi.AbiHpMonitorFlagHP_MON_DROP|abi.AbiHpMonitorFlagHP_MON_TRACE|abi.AbiHpMonitorFlagHP_MON_POLICY)
}

func findDrop(t *testing.T, log, src, dst string) *monitor.Event {
	f, err := os.Open(log)
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev monitor.Event
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		if ev.Type == "drop" && ev.Reason == "policy_denied" && strings.HasPrefix(ev.Src, src+":") && ev.Dst == dst {
			return &ev
		}
	}
	return nil
}

// udpCount counts datagrams per source at ns:addr.
func udpCount(t *testing.T, ns *lab.NS, addr string) func(string) int {
	pc, err := ns.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	var mu sync.Mutex
	per := map[string]int{}
	go func() {
		buf := make([]byte, 2048)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			mu.Lock()
			per[from.(*net.UDPAddr).IP.String()]++
			mu.Unlock()
		}
	}()
	return func(ip string) int { mu.Lock(); defer mu.Unlock(); return per[ip] }
}

func udpFlood(t *testing.T, ns *lab.NS, addr string, stop <-chan struct{}) func() int {
	conn, err := ns.Dial(context.Background(), "udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer conn.Close()
		msg := make([]byte, 32)
		for i := uint64(0); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			binary.BigEndian.PutUint64(msg, i)
			if _, err := conn.Write(msg); err == nil {
				sent.Add(1)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return func() int { <-done; return int(sent.Load()) }
}

// TestPrivilegedPolicyKillAndUpgrade: under an allowed TCP stream, an allowed
// UDP flow and a denied UDP flood, the policy plugin is killed with SIGKILL
// and later upgraded to another build: no allowed packet is lost, no denied
// one gets through, and the endpoints and policy survive both.
func TestPrivilegedPolicyKillAndUpgrade(t *testing.T) {
	env := policyEnv(t)
	xa, xb, za := env.Lab.Pods["xa"], env.Lab.Pods["xb"], env.Lab.Pods["za"]
	count := udpCount(t, xa.NS, xa.IP.String()+":5353")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stream, err := lab.StartStream(ctx, xb.NS, xa.IP.String()+":80", 256, 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	allowed := udpFlood(t, xb.NS, xa.IP.String()+":5353", stop)
	denied := udpFlood(t, za.NS, xa.IP.String()+":5353", stop)

	time.Sleep(300 * time.Millisecond)
	before := env.PluginStatus("policy")
	if err := syscall.Kill(before.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		p := env.PluginStatus("policy")
		if p.Pid != before.Pid && p.Pid > 0 && p.Healthy && p.GCLease {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("policy plugin not back after SIGKILL: %+v", p)
		}
		time.Sleep(50 * time.Millisecond)
	}
	checkPolicyState(t, env, "after SIGKILL")

	v2 := e2e.Variant(t, "hotpath-policy", policyPkg, "0.2.0")
	if res, err := upgrade(env, "policy", v2, time.Second); err != nil {
		t.Fatalf("upgrade: %v (%+v)", err, res)
	}
	if p := env.PluginStatus("policy"); p.Version != "0.2.0" {
		t.Errorf("after upgrade: policy %s, want 0.2.0", p.Version)
	}
	checkPolicyState(t, env, "after upgrade")
	// The new instance writes: a change goes through it.
	mustCLI(t, env, "endpoint", "add", "10.99.0.1", "--namespace", "x", "--label", "role=client")

	time.Sleep(300 * time.Millisecond)
	close(stop)
	sentAllowed, sentDenied := allowed(), denied()
	time.Sleep(100 * time.Millisecond)
	st := stream.Stop()
	if st.Err != nil || st.MaxGap > 150*time.Millisecond {
		t.Errorf("allowed stream: err %v, longest pause %v", st.Err, st.MaxGap)
	}
	if got := count(xb.IP.String()); got != sentAllowed {
		t.Errorf("allowed UDP: %d sent, %d received", sentAllowed, got)
	}
	if got := count(za.IP.String()); got != 0 || sentDenied == 0 {
		t.Errorf("denied UDP: %d sent, %d received, want 0", sentDenied, got)
	}
	t.Logf("allowed UDP %d/%d, denied 0/%d, stream %d rounds, longest pause %v", count(xb.IP.String()), sentAllowed, sentDenied, st.Rounds, st.MaxGap)
}

func checkPolicyState(t *testing.T, env *e2e.Env, when string) {
	t.Helper()
	var eps []netpol.Endpoint
	env.JSON(&eps, "endpoint", "list")
	var ps []netpol.PolicyInfo
	env.JSON(&ps, "policy", "list")
	if len(eps) != 3 || len(ps) != 1 || len(ps[0].Selected) != 1 {
		t.Errorf("%s: %d endpoints, policies %+v; want 3 endpoints and clients-only selecting x/a", when, len(eps), ps)
	}
}
