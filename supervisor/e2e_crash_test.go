package supervisor_test

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/lab"
)

// streamEnv is a lab with a supervisor running the ct plugin and a TCP
// stream from pod a to an echo server in pod b.
func streamEnv(t *testing.T) (*e2e.Env, *lab.Stream, string) {
	env := e2e.New(t, "a", "b")
	env.StartSupervisor(env.PluginFlag("ct"))
	b := env.Lab.Pods["b"]
	srv := b.IP.String() + ":8080"
	if _, err := lab.EchoServer(b.NS, srv); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := lab.StartStream(ctx, env.Lab.Pods["a"].NS, srv, 512, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	waitFor(t, "stream traffic", 5*time.Second, func() bool { return s.Stats().Rounds > 20 })
	return env, s, srv
}

func streamPackets(t *testing.T, env *e2e.Env, s *lab.Stream, srv string) uint64 {
	t.Helper()
	r := find(env.CT(), "TCP", "OUT", s.LocalAddr(), srv)
	if r == nil {
		t.Fatalf("no CT entry for the stream %s -> %s", s.LocalAddr(), srv)
	}
	return r.Packets
}

func TestPrivilegedPluginCrashKeepsFlows(t *testing.T) {
	env, s, srv := streamEnv(t)
	before := env.PluginStatus("ct")
	pkts := streamPackets(t, env, s, srv)

	if err := syscall.Kill(before.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var back time.Duration
	waitFor(t, "ct plugin back", 5*time.Second, func() bool {
		p := env.PluginStatus("ct")
		if p.Pid != before.Pid && p.Pid > 0 && p.Healthy && p.GCLease {
			back = time.Since(killed)
			return true
		}
		return false
	})
	if back > 2*time.Second {
		t.Errorf("ct plugin back after %s, want within 2s", back)
	}
	after := env.PluginStatus("ct")
	if after.Restarts != before.Restarts+1 || after.Generation != before.Generation {
		t.Errorf("after restart %+v, before %+v: want one more restart and the same generation", after, before)
	}
	for i := 0; i < 5; i++ {
		time.Sleep(200 * time.Millisecond)
		now := streamPackets(t, env, s, srv)
		if now < pkts {
			t.Fatalf("CT packet counter went back from %d to %d", pkts, now)
		}
		pkts = now
	}
	st := s.Stop()
	if st.Err != nil {
		t.Fatalf("stream broke: %v", st.Err)
	}
	if st.MaxGap > 500*time.Millisecond {
		t.Errorf("stream stalled for %s while the plugin restarted", st.MaxGap)
	}
	t.Logf("plugin back after %s; stream: %d rounds, %d bytes, longest pause %s", back, st.Rounds, st.Bytes, st.MaxGap)
}

func TestPrivilegedPluginRestartCommand(t *testing.T) {
	env, s, srv := streamEnv(t)
	before := env.PluginStatus("ct")
	if out, err := env.CLI("plugin", "restart", "ct"); err != nil {
		t.Fatalf("plugin restart: %v\n%s", err, out)
	}
	after := env.PluginStatus("ct")
	if after.Pid == before.Pid || !after.Healthy || !after.GCLease || after.Generation != before.Generation {
		t.Errorf("after restart %+v, before %+v", after, before)
	}
	streamPackets(t, env, s, srv)
	if st := s.Stop(); st.Err != nil || st.MaxGap > 500*time.Millisecond {
		t.Errorf("stream %+v", st)
	}
}

func TestPrivilegedSupervisorCrashKeepsForwarding(t *testing.T) {
	env, s, srv := streamEnv(t)
	st0 := env.Status()
	plugin0 := env.PluginStatus("ct")
	pkts := streamPackets(t, env, s, srv)

	if err := env.Sup.Kill(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	env.Sup.Wait(5 * time.Second)
	// Nobody home: the kernel forwards and tracks on its own.
	r0 := s.Stats().Rounds
	time.Sleep(1500 * time.Millisecond)
	if s.Stats().Rounds < r0+20 || s.Stats().Err != nil {
		t.Fatalf("traffic stalled without a supervisor: %+v", s.Stats())
	}
	if now := streamPackets(t, env, s, srv); now <= pkts {
		t.Fatalf("CT counter did not grow without a supervisor: %d -> %d", pkts, now)
	}

	env.StartSupervisor(env.PluginFlag("ct"))
	st1 := env.Status()
	ids := map[string]uint32{}
	for _, m := range st0.Maps {
		ids[m.Name] = m.ID
	}
	for _, m := range st1.Maps {
		if ids[m.Name] != m.ID {
			t.Errorf("map %s was recreated: id %d, was %d", m.Name, m.ID, ids[m.Name])
		}
	}
	if len(st1.Adopted.MapsCreated) != 0 || len(st1.Adopted.MapsReopened) != len(st0.Maps) {
		t.Errorf("adoption %+v: want every map reopened, none created", st1.Adopted)
	}
	if len(st1.Adopted.LinksReopened) != 2 || st1.ActiveGeneration != st0.ActiveGeneration {
		t.Errorf("adoption %+v, generation %d (was %d)", st1.Adopted, st1.ActiveGeneration, st0.ActiveGeneration)
	}
	plugin1 := env.PluginStatus("ct")
	if plugin1.Pid != plugin0.Pid || strings.Join(st1.Adopted.PluginsAdopted, ",") != "ct" {
		t.Errorf("ct plugin not re-adopted: pid %d (was %d), adopted %v", plugin1.Pid, plugin0.Pid, st1.Adopted.PluginsAdopted)
	}
	if now := streamPackets(t, env, s, srv); now <= pkts {
		t.Errorf("CT entry lost or reset over the restart: %d -> %d packets", pkts, now)
	}
	res := s.Stop()
	if res.Err != nil || res.MaxGap > 500*time.Millisecond {
		t.Errorf("stream %+v", res)
	}
}

func TestPrivilegedIncompatiblePinIsRefused(t *testing.T) {
	env := e2e.New(t, "a")
	specs, err := pin.SharedSpecs()
	if err != nil {
		t.Fatal(err)
	}
	bad := specs[abi.MapCT4].Copy()
	bad.ValueSize += 8
	bad.Key, bad.Value = nil, nil
	m, err := ebpf.NewMap(bad)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	path := pin.Layout{Root: env.Lab.BPFFS}.Map(abi.MapCT4)
	os.MkdirAll(path[:strings.LastIndex(path, "/")], 0o700)
	if err := m.Pin(path); err != nil {
		t.Fatal(err)
	}
	info, _ := m.Info()
	id, _ := info.ID()

	log, err := env.RunSupervisor(20*time.Second, env.PluginFlag("ct"))
	if err == nil {
		t.Fatalf("supervisor started over an incompatible ct4 pin:\n%s", log)
	}
	if !strings.Contains(log, "ct4") || !strings.Contains(log, "value size") {
		t.Errorf("error does not name the map and what differs:\n%s", log)
	}
	again, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		t.Fatalf("pin removed: %v", err)
	}
	defer again.Close()
	info2, _ := again.Info()
	if id2, _ := info2.ID(); id2 != id {
		t.Errorf("pinned map replaced: id %d, was %d", id2, id)
	}
}

func TestPrivilegedBadPluginsLeaveDatapath(t *testing.T) {
	env, s, srv := streamEnv(t)
	if err := env.Sup.Stop(5 * time.Second); err != nil {
		t.Logf("supervisor stop: %v", err)
	}
	gen := activeGen(t, env)
	pkts := streamPackets(t, env, s, srv)

	script := env.Lab.Dir + "/garbage.sh"
	os.WriteFile(script, []byte("#!/bin/sh\necho this is not a plugin\nsleep 30\n"), 0o755)
	cases := []struct{ name, plugin, want string }{
		{"wrong checksum", env.PluginFlag("ct") + ",sha256=" + strings.Repeat("ab", 32), "checksum"},
		{"not a plugin", "ct=/bin/false", "plugin"},
		{"garbage speaker", "ct=" + script, "plugin"},
		{"missing path", "ct=/nonexistent/hotpath-ct", "no such file"},
	}
	for _, c := range cases {
		start := time.Now()
		log, err := env.RunSupervisor(30*time.Second, c.plugin)
		if err == nil {
			t.Errorf("%s: supervisor started", c.name)
			continue
		}
		if !strings.Contains(strings.ToLower(log), c.want) {
			t.Errorf("%s: error lacks %q:\n%s", c.name, c.want, log)
		}
		t.Logf("%s: refused in %s: %s", c.name, time.Since(start).Round(time.Millisecond), lastLine(log))
		if g := activeGen(t, env); g != gen {
			t.Errorf("%s: generation changed %d -> %d", c.name, gen, g)
		}
		now := streamPackets(t, env, s, srv)
		if now <= pkts {
			t.Errorf("%s: traffic not tracked any more (%d -> %d)", c.name, pkts, now)
		}
		pkts = now
	}
	for _, dev := range []string{"lxca", "lxcb"} {
		if _, err := os.Stat(pin.Layout{Root: env.Lab.BPFFS}.Link(dev, "ingress")); err != nil {
			t.Errorf("link pin of %s gone: %v", dev, err)
		}
	}
	if res := s.Stop(); res.Err != nil {
		t.Errorf("stream broke: %v", res.Err)
	}
}

func activeGen(t *testing.T, env *e2e.Env) uint32 {
	t.Helper()
	m, err := ebpf.LoadPinnedMap(pin.Layout{Root: env.Lab.BPFFS}.Map(abi.MapConfig), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var c abi.Config
	if err := m.Lookup(uint32(0), &c); err != nil {
		t.Fatal(err)
	}
	return c.ActiveGen
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
