package supervisor_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/plugins/ct"
	"github.com/hotpath/hotpath/supervisor"
)

// processesOf lists the pids whose /proc/<pid>/exe is exe.
func processesOf(exe string) []int {
	var out []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if got, err := os.Readlink(d + "/exe"); err == nil && strings.TrimSuffix(got, " (deleted)") == exe && !zombie(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// killAll ends the processes of exe, a binary this test built.
func killAll(exe string) {
	for _, pid := range processesOf(exe) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// script writes an executable shell script at path that execs target,
// replacing any file there in one rename.
func script(t *testing.T, path, target string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte("#!/bin/sh\nexec "+target+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// faultyBinary is the binary the Faulty scripts exec.
func faultyBinary(faulty string) string { return filepath.Join(filepath.Dir(faulty), "faultyct") }

// TestPrivilegedFailedRestartLeavesNoProcess: the configured binary turns
// into one whose programs the verifier refuses, and the plugin dies. Every
// restart starts that binary and fails at Load; each attempt must end the
// process it started instead of leaving one root process per retry.
func TestPrivilegedFailedRestartLeavesNoProcess(t *testing.T) {
	env := e2e.New(t, "a")
	path := filepath.Join(env.Lab.Dir, "hotpath-ct")
	script(t, path, filepath.Join(env.Bin, "hotpath-ct"))
	env.StartSupervisor("ct=" + path)
	before := env.PluginStatus("ct")
	gen := env.Status().ActiveGeneration

	faulty := e2e.Faulty(t, "verifier", "9.9.9")
	t.Cleanup(func() { killAll(faultyBinary(faulty)) })
	script(t, path, faulty)
	if err := syscall.Kill(before.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The backoff retries after 0.2, 0.4, 0.8 and 1.6s: four attempts.
	time.Sleep(4 * time.Second)
	if pids := processesOf(faultyBinary(faulty)); len(pids) > 1 {
		t.Errorf("%d processes of the failing build run after its restarts failed: %v", len(pids), pids)
	}
	p := env.PluginStatus("ct")
	if p.Healthy || env.Status().ActiveGeneration != gen {
		t.Errorf("after failed restarts: %+v, generation %d (was %d)", p, env.Status().ActiveGeneration, gen)
	}
	// A working binary again: the next retry brings the plugin back.
	script(t, path, filepath.Join(env.Bin, "hotpath-ct"))
	waitFor(t, "the plugin back", 20*time.Second, func() bool {
		p := env.PluginStatus("ct")
		return p.Healthy && p.Pid != before.Pid && p.GCLease
	})
	if pids := processesOf(faultyBinary(faulty)); len(pids) > 0 {
		t.Errorf("processes of the failing build still run: %v", pids)
	}
}

// TestPrivilegedCrashAfterCommitStopsOldInstance: the supervisor dies right
// after an upgrade's commit point, while the old instance is still shutting
// down (it lingers after its graceful stop). The next supervisor must end
// the old instance, recognised by what it ran, and keep the new one.
func TestPrivilegedCrashAfterCommitStopsOldInstance(t *testing.T) {
	env := e2e.New(t, "a")
	old := e2e.Faulty(t, "linger=30s", "1.0.0-old")
	t.Cleanup(func() { killAll(faultyBinary(old)) })
	env.StartSupervisor("ct=" + old)
	before := env.PluginStatus("ct")
	v2 := e2e.Variant(t, "hotpath-ct", ctPkg, "2.0.0")
	done := make(chan error, 1)
	go func() {
		_, err := upgrade(env, "ct", v2, 300*time.Millisecond)
		done <- err
	}()
	var newPid int
	deadline := time.Now().Add(20 * time.Second)
	for newPid == 0 && time.Now().Before(deadline) {
		if st, _ := supervisor.LoadState(env.StateDir); st != nil && st.Upgrade != nil && st.Upgrade.Phase == "committed" {
			newPid = st.Upgrade.New.Pid
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if newPid == 0 {
		t.Fatal("the upgrade never reached its commit point")
	}
	env.Remember(newPid)
	env.Sup.Kill(syscall.SIGKILL)
	env.Sup.Wait(5 * time.Second)
	<-done
	if !running(before.Pid) {
		t.Fatalf("old instance %d ended before the supervisor died: the crash missed the window", before.Pid)
	}

	env.StartSupervisor("ct=" + old)
	waitFor(t, "the old instance to end", 5*time.Second, func() bool { return !running(before.Pid) })
	p := env.PluginStatus("ct")
	if p.Pid != newPid || p.Version != "2.0.0" || !p.GCLease || !p.Healthy {
		t.Errorf("after restart: %+v, want the new instance %d holding the lease", p, newPid)
	}
	if ps := env.Plugins(); len(ps) != 1 {
		t.Errorf("plugins %+v", ps)
	}
}

// TestPrivilegedUpgradeSurvivesRestarts: a completed upgrade is what runs
// from then on: after a plugin restart, after a supervisor crash and a
// restart of the adopted plugin, after a clean supervisor restart; until
// the config names another binary.
func TestPrivilegedUpgradeSurvivesRestarts(t *testing.T) {
	env, s, srv := streamEnv(t)
	const want = "2.0.0-persist"
	v2 := e2e.Variant(t, "hotpath-ct", ctPkg, want)
	if _, err := upgrade(env, "ct", v2, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	check := func(when string) supervisor.PluginStatus {
		t.Helper()
		p := env.PluginStatus("ct")
		if p.Version != want || p.Path != v2 || !p.GCLease {
			t.Errorf("%s: %+v, want version %s from %s with the lease", when, p, want, v2)
		}
		return p
	}
	if out, err := env.CLI("plugin", "restart", "ct"); err != nil {
		t.Fatalf("plugin restart: %v\n%s", err, out)
	}
	check("after a plugin restart")

	env.Sup.Kill(syscall.SIGKILL)
	env.Sup.Wait(5 * time.Second)
	env.StartSupervisor(env.PluginFlag("ct"))
	p := check("after a supervisor crash")
	syscall.Kill(p.Pid, syscall.SIGKILL)
	waitFor(t, "the plugin back", 10*time.Second, func() bool {
		q := env.PluginStatus("ct")
		return q.Pid != p.Pid && q.Healthy && q.GCLease
	})
	check("after the adopted plugin crashed")

	if err := env.Sup.Stop(10 * time.Second); err != nil {
		t.Logf("supervisor stop: %v", err)
	}
	env.StartSupervisor(env.PluginFlag("ct"))
	check("after a clean supervisor restart")

	if err := env.Sup.Stop(10 * time.Second); err != nil {
		t.Logf("supervisor stop: %v", err)
	}
	v3 := e2e.Variant(t, "hotpath-ct", ctPkg, "3.0.0-config")
	env.StartSupervisor("ct=" + v3)
	if p := env.PluginStatus("ct"); p.Version != "3.0.0-config" {
		t.Errorf("config names another binary: %+v runs", p)
	}
	streamPackets(t, env, s, srv)
	if st := s.Stop(); st.Err != nil {
		t.Errorf("stream broke: %v", st.Err)
	}
}

// TestPrivilegedConfigChangeReloadsAdoptedPlugin: CT lifetimes are compiled into
// the ct stage, so a supervisor restarted with other lifetimes must load
// the stage again, even though it adopts the running plugin.
func TestPrivilegedConfigChangeReloadsAdoptedPlugin(t *testing.T) {
	env := e2e.New(t, "a", "b")
	withTCP := func(life time.Duration) {
		cfg := ct.DefaultConfig()
		cfg.Lifetimes.TCP = ctmap.Duration(life)
		if life == time.Hour {
			cfg.GC.Start = ctmap.Duration(30 * time.Second)
		}
		raw, _ := json.Marshal(cfg)
		env.WriteConfig(supervisor.Config{Plugins: []supervisor.PluginConfig{{Name: "ct", Path: env.Bin + "/hotpath-ct", Config: raw}}})
	}
	withTCP(6 * time.Hour)
	env.StartSupervisor()
	gen := env.Status().ActiveGeneration
	pid := env.PluginStatus("ct").Pid
	env.Sup.Kill(syscall.SIGKILL)
	env.Sup.Wait(5 * time.Second)

	withTCP(time.Hour)
	env.StartSupervisor()
	st := env.Status()
	if contains(st.Adopted.ProgramsReused, "ct") || st.ActiveGeneration == gen {
		t.Errorf("config changed, programs kept: generation %d (was %d), adoption %+v", st.ActiveGeneration, gen, st.Adopted)
	}
	if p := env.PluginStatus("ct"); p.Pid != pid {
		t.Errorf("plugin not adopted: pid %d, was %d", p.Pid, pid)
	}
	// Its GC runs with the new config too.
	var stats ct.GCStats
	out, err := env.CLI("plugin", "invoke", "ct", "stats")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &stats); err != nil {
		t.Fatalf("ct stats %s: %v", out, err)
	}
	if stats.Interval != 30*time.Second {
		t.Errorf("adopted plugin's GC interval %s, want the new config's 30s", stats.Interval)
	}
	b := env.Lab.Pods["b"]
	srv := b.IP.String() + ":8080"
	if _, err := lab.EchoServer(b.NS, srv); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := lab.StartStream(ctx, env.Lab.Pods["a"].NS, srv, 64, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	waitFor(t, "stream traffic", 5*time.Second, func() bool { return s.Stats().Rounds > 10 })
	r := find(env.CT(), "TCP", "OUT", s.LocalAddr(), srv)
	if r == nil {
		t.Fatal("no CT entry for the new connection")
	}
	if r.Expires <= 0 || r.Expires > 3600 {
		t.Errorf("new established connection expires in %ds, want at most the configured 3600s", r.Expires)
	}
}

// TestPrivilegedFailedStartKeepsAdoptedPlugins: a supervisor start that
// fails (a device that does not exist, a second plugin that is no plugin)
// must leave the running, healthy plugin it adopted alone, so the next
// start adopts it again.
func TestPrivilegedFailedStartKeepsAdoptedPlugins(t *testing.T) {
	env, s, srv := streamEnv(t)
	p0 := env.PluginStatus("ct")
	env.Sup.Kill(syscall.SIGKILL)
	env.Sup.Wait(5 * time.Second)

	env.Extra = []string{"--device", "nosuchdev0"}
	log, err := env.RunSupervisor(30*time.Second, env.PluginFlag("ct"))
	if err == nil || !strings.Contains(log, "nosuchdev0") {
		t.Errorf("start with a missing device: %v\n%s", err, log)
	}
	if !running(p0.Pid) {
		t.Fatalf("a start that failed on a missing device ended the adopted plugin %d", p0.Pid)
	}
	env.Extra = nil
	log, err = env.RunSupervisor(30*time.Second, env.PluginFlag("ct"), "lb=/bin/false")
	if err == nil {
		t.Errorf("start with a broken lb plugin succeeded\n%s", log)
	}
	if !running(p0.Pid) {
		t.Fatalf("a start that failed on another plugin ended the adopted plugin %d", p0.Pid)
	}

	env.StartSupervisor(env.PluginFlag("ct"))
	st := env.Status()
	if p := env.PluginStatus("ct"); p.Pid != p0.Pid || !p.GCLease || !contains(st.Adopted.PluginsAdopted, "ct") {
		t.Errorf("plugin not adopted after the failed starts: %+v, adoption %+v", p, st.Adopted)
	}
	pkts := streamPackets(t, env, s, srv)
	time.Sleep(300 * time.Millisecond)
	if now := streamPackets(t, env, s, srv); now <= pkts {
		t.Errorf("traffic not tracked")
	}
	if res := s.Stop(); res.Err != nil {
		t.Errorf("stream broke: %v", res.Err)
	}
}

// TestPrivilegedUpgradeLeaseHandoffFailureRollsBack: the new instance passes
// the health gate but refuses the GC lease. The upgrade must fail and roll
// back with the old instance holding the lease, not report success with no
// GC owner.
func TestPrivilegedUpgradeLeaseHandoffFailureRollsBack(t *testing.T) {
	env, s, srv := streamEnv(t)
	before := env.PluginStatus("ct")
	gen := env.Status().ActiveGeneration
	res, err := upgrade(env, "ct", e2e.Faulty(t, "lease", "9.9.9"), 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "lease") {
		t.Fatalf("upgrade with a failing lease handoff: %v (result %+v)", err, res)
	}
	t.Logf("%v", err)
	p := env.PluginStatus("ct")
	if p.Pid != before.Pid || p.Version != before.Version || !p.GCLease || !p.Healthy {
		t.Errorf("after the failed handoff: %+v, want the old instance %d with the lease", p, before.Pid)
	}
	if g := env.Status().ActiveGeneration; g != gen {
		t.Errorf("generation %d, want %d back", g, gen)
	}
	if res != nil && res.NewPid > 0 && running(res.NewPid) {
		t.Errorf("new instance %d left running", res.NewPid)
	}
	pkts := streamPackets(t, env, s, srv)
	time.Sleep(300 * time.Millisecond)
	if now := streamPackets(t, env, s, srv); now <= pkts {
		t.Errorf("traffic not tracked")
	}
	if st := s.Stop(); st.Err != nil {
		t.Errorf("stream broke: %v", st.Err)
	}
}

// TestPrivilegedUpgradeRelativeBinary: `--binary ./x` names x in the
// caller's directory, not in the supervisor's.
func TestPrivilegedUpgradeRelativeBinary(t *testing.T) {
	env := e2e.New(t, "a")
	env.StartSupervisor(env.PluginFlag("ct"))
	v2 := e2e.Variant(t, "hotpath-ct", ctPkg, "2.0.0-relative")
	cmd := exec.Command(filepath.Join(env.Bin, "hotpath"), "--bpffs", env.Lab.BPFFS, "--state-dir", env.StateDir,
		"plugin", "upgrade", "ct", "--binary", "./"+filepath.Base(v2), "--health-window", "300ms")
	cmd.Dir = filepath.Dir(v2)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("upgrade with a relative binary: %v\n%s", err, out)
	}
	if p := env.PluginStatus("ct"); p.Version != "2.0.0-relative" || p.Path != v2 {
		t.Errorf("after the upgrade: %+v", p)
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// TestPrivilegedSlowPluginRestartDoesNotBlockStatus: while a restarted
// plugin takes seconds to load its programs, the supervisor keeps
// answering: no lock is held across a call into a plugin.
func TestPrivilegedSlowPluginRestartDoesNotBlockStatus(t *testing.T) {
	env := e2e.New(t, "a")
	path := filepath.Join(env.Lab.Dir, "hotpath-ct")
	script(t, path, filepath.Join(env.Bin, "hotpath-ct"))
	env.StartSupervisor("ct=" + path)
	before := env.PluginStatus("ct")
	slow := e2e.Faulty(t, "slowload=4s", "9.9.9")
	t.Cleanup(func() { killAll(faultyBinary(slow)) })
	script(t, path, slow)
	if err := syscall.Kill(before.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the slow instance to start", 10*time.Second, func() bool { return len(processesOf(faultyBinary(slow))) > 0 })
	time.Sleep(500 * time.Millisecond) // inside its Load now
	var worst time.Duration
	for i := 0; i < 5; i++ {
		start := time.Now()
		env.Status()
		worst = max(worst, time.Since(start))
		time.Sleep(200 * time.Millisecond)
	}
	if worst > 1500*time.Millisecond {
		t.Errorf("status took %s while a plugin was loading", worst)
	}
	waitFor(t, "the slow instance to take over", 20*time.Second, func() bool {
		p := env.PluginStatus("ct")
		return p.Version == "9.9.9" && p.Healthy && p.GCLease
	})
	t.Logf("slowest status during the load: %s", worst)
}

// TestPrivilegedUpgradeOldKeepsLeaseRollsBack: the old instance fails to
// give up its GC lease. Granting the new one its own would make two GC
// owners; the upgrade must fail and roll back instead.
func TestPrivilegedUpgradeOldKeepsLeaseRollsBack(t *testing.T) {
	env := e2e.New(t, "a")
	old := e2e.Faulty(t, "nodeactivate", "1.0.0-sticky")
	t.Cleanup(func() { killAll(faultyBinary(old)) })
	env.StartSupervisor("ct=" + old)
	before := env.PluginStatus("ct")
	gen := env.Status().ActiveGeneration
	v2 := e2e.Variant(t, "hotpath-ct", ctPkg, "2.0.0")
	res, err := upgrade(env, "ct", v2, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "lease") {
		t.Fatalf("upgrade over an old instance that keeps its lease: %v (result %+v)", err, res)
	}
	p := env.PluginStatus("ct")
	if p.Pid != before.Pid || !p.GCLease || env.Status().ActiveGeneration != gen {
		t.Errorf("after the failed handoff: %+v, generation %d (was %d)", p, env.Status().ActiveGeneration, gen)
	}
	if res != nil && res.NewPid > 0 && running(res.NewPid) {
		t.Errorf("new instance %d left running beside the lease holder", res.NewPid)
	}
}

// TestPrivilegedCrashBeforeRecordEndsPlugin: the supervisor dies while it
// restarts a plugin, after the new process started but before the state
// file names it (the restart is still loading its programs). The next
// supervisor cannot re-adopt it (the file names the dead instance) and
// starts another; the unrecorded process must not keep running beside it.
func TestPrivilegedCrashBeforeRecordEndsPlugin(t *testing.T) {
	env := e2e.New(t, "a")
	path := filepath.Join(env.Lab.Dir, "hotpath-ct")
	script(t, path, filepath.Join(env.Bin, "hotpath-ct"))
	env.StartSupervisor("ct=" + path)
	before := env.PluginStatus("ct")

	faulty := e2e.Faulty(t, "slowload=60s", "9.9.9")
	t.Cleanup(func() { killAll(faultyBinary(faulty)) })
	script(t, path, faulty)
	if err := syscall.Kill(before.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var orphan []int
	waitFor(t, "the restart's process", 10*time.Second, func() bool {
		orphan = processesOf(faultyBinary(faulty))
		return len(orphan) == 1
	})
	time.Sleep(time.Second) // into its slow Load
	env.Sup.Kill(syscall.SIGKILL)
	env.Sup.Wait(5 * time.Second)
	st, err := supervisor.LoadState(env.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	if r := st.Plugins["ct"].Reattach; r == nil || r.Pid != before.Pid {
		t.Fatalf("state file records %+v, want the dead instance %d: the crash missed its window", r, before.Pid)
	}
	if !running(orphan[0]) {
		t.Fatalf("the unrecorded process %d died with the supervisor: nothing to test", orphan[0])
	}

	script(t, path, filepath.Join(env.Bin, "hotpath-ct"))
	env.StartSupervisor("ct=" + path)
	p := env.PluginStatus("ct")
	if !p.Healthy || p.Pid == orphan[0] {
		t.Errorf("after the restart: %+v", p)
	}
	if left := processesOf(faultyBinary(faulty)); len(left) > 0 {
		t.Errorf("the process started before the crash still runs beside pid %d: %v", p.Pid, left)
	}
}

// TestPrivilegedPluginKilledDuringItsUpgrade: the old instance dies while
// its own upgrade loads the new one. Its restart waits for the upgrade and
// then has nothing to do: the upgrade commits, one instance runs (the new
// one), no restart of the old binary is left behind, and the pins the state
// names are whole, so the next upgrade can build on them.
func TestPrivilegedPluginKilledDuringItsUpgrade(t *testing.T) {
	env := e2e.New(t, "a")
	env.StartSupervisor(env.PluginFlag("ct"))
	before := env.PluginStatus("ct")
	slow := e2e.Faulty(t, "slowload=2s", "2.0.0-slow")
	t.Cleanup(func() { killAll(faultyBinary(slow)) })
	done := make(chan error, 1)
	go func() {
		_, err := upgrade(env, "ct", slow, 300*time.Millisecond)
		done <- err
	}()
	waitFor(t, "the new instance", 10*time.Second, func() bool { return len(processesOf(faultyBinary(slow))) == 1 })
	if err := syscall.Kill(before.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("upgrade with the old instance gone: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("upgrade did not return in a minute")
	}
	time.Sleep(2 * time.Second) // the old instance's restart had its turn
	p := env.PluginStatus("ct")
	// Not the version: faultyct is built once per test binary, with the
	// version of the first Faulty call.
	if !p.Healthy || !p.GCLease || p.Path != slow {
		t.Errorf("after the upgrade: %+v", p)
	}
	if left := processesOf(filepath.Join(env.Bin, "hotpath-ct")); len(left) > 0 {
		t.Errorf("the old binary runs again beside the upgraded plugin %d: %v", p.Pid, left)
	}
	if pids := processesOf(faultyBinary(slow)); len(pids) != 1 || pids[0] != p.Pid {
		t.Errorf("processes of the new binary %v, want only %d", pids, p.Pid)
	}
	v3 := e2e.Variant(t, "hotpath-ct", ctPkg, "3.0.0")
	if _, err := upgrade(env, "ct", v3, 300*time.Millisecond); err != nil {
		t.Errorf("next upgrade: %v", err)
	}
}

// TestPrivilegedCrashBeforeUpgradeRecordEndsPlugin: the supervisor dies
// while an upgrade's new instance answers its first Describe, before the
// upgrade is recorded at all. The next supervisor adopts the old instance;
// the new one, which no file names, must not keep running beside it.
func TestPrivilegedCrashBeforeUpgradeRecordEndsPlugin(t *testing.T) {
	env := e2e.New(t, "a")
	env.StartSupervisor(env.PluginFlag("ct"))
	before := env.PluginStatus("ct")
	slow := e2e.Faulty(t, "slowdescribe=60s", "2.0.0-slow")
	t.Cleanup(func() { killAll(faultyBinary(slow)) })
	done := make(chan struct{})
	go func() {
		upgrade(env, "ct", slow, 300*time.Millisecond) // fails: the supervisor dies
		close(done)
	}()
	var unrecorded []int
	waitFor(t, "the new instance", 10*time.Second, func() bool {
		unrecorded = processesOf(faultyBinary(slow))
		return len(unrecorded) == 1
	})
	time.Sleep(time.Second) // past the handshake, into Describe
	env.Sup.Kill(syscall.SIGKILL)
	env.Sup.Wait(5 * time.Second)
	<-done
	if st, err := supervisor.LoadState(env.StateDir); err != nil || st.Upgrade != nil {
		t.Fatalf("state file records an upgrade (%v): the crash missed its window", err)
	}
	if !running(unrecorded[0]) {
		t.Fatalf("the unrecorded process %d died with the supervisor: nothing to test", unrecorded[0])
	}

	env.StartSupervisor(env.PluginFlag("ct"))
	if p := env.PluginStatus("ct"); p.Pid != before.Pid || !p.Healthy {
		t.Errorf("old instance %d not adopted: %+v", before.Pid, p)
	}
	if left := processesOf(faultyBinary(slow)); len(left) > 0 {
		t.Errorf("the new instance of the interrupted upgrade still runs: %v", left)
	}
}
