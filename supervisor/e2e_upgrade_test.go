package supervisor_test

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/supervisor"
)

const ctPkg = "github.com/hotpath/hotpath/plugins/ct"

func upgrade(env *e2e.Env, name, binary string, window time.Duration) (*supervisor.UpgradeResult, error) {
	out, err := env.CLI("plugin", "upgrade", name, "--binary", binary, "--health-window", window.String(), "-o", "json")
	var res supervisor.UpgradeResult
	if jerr := json.Unmarshal(out, &res); jerr != nil && err == nil {
		return nil, jerr
	}
	return &res, err
}

// drops sums every dropping reason of the datapath counters.
func drops(t *testing.T, env *e2e.Env) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, r := range []abi.Reason{abi.AbiHpReasonHP_R_MISSED_TAIL_CALL, abi.AbiHpReasonHP_R_NO_CONTEXT, abi.AbiHpReasonHP_R_PARSE_ERROR, abi.AbiHpReasonHP_R_GEN_MISMATCH} {
		out[abi.ReasonName(r)] = counter(t, env, r)
	}
	return out
}

func TestPrivilegedUpgradeCTAlternatingBuilds(t *testing.T) {
	env, s, srv := streamEnv(t)
	builds := []string{e2e.Variant(t, "hotpath-ct", ctPkg, "1.0.0-a"), e2e.Variant(t, "hotpath-ct", ctPkg, "1.0.0-b")}
	pkts := streamPackets(t, env, s, srv)
	gen := env.Status().ActiveGeneration
	for i := 0; i < 10; i++ {
		want := []string{"1.0.0-a", "1.0.0-b"}[i%2]
		res, err := upgrade(env, "ct", builds[i%2], 500*time.Millisecond)
		if err != nil {
			t.Fatalf("upgrade %d to %s: %v", i, want, err)
		}
		p := env.PluginStatus("ct")
		if p.Version != want || p.Pid != res.NewPid || !p.GCLease || !p.Healthy || p.Generation != gen+1 {
			t.Fatalf("after upgrade %d: %+v (result %+v)", i, p, res)
		}
		if running(res.OldPid) {
			t.Fatalf("old instance %d still runs after upgrade %d", res.OldPid, i)
		}
		gen++
		now := streamPackets(t, env, s, srv)
		if now < pkts {
			t.Fatalf("CT counter went back from %d to %d", pkts, now)
		}
		pkts = now
		t.Logf("upgrade %d -> %s: %s, flip to first packet %s", i, want, res.Duration.Round(time.Millisecond), res.FlipToPacket)
	}
	if st := s.Stop(); st.Err != nil || st.MaxGap > 500*time.Millisecond {
		t.Errorf("stream across 10 upgrades: %+v", st)
	}
	for reason, n := range drops(t, env) {
		if n != 0 {
			t.Errorf("%d packets dropped as %s", n, reason)
		}
	}
}

func TestPrivilegedUpgradeBrokenBuildsAreRefusedOrRolledBack(t *testing.T) {
	env, s, srv := streamEnv(t)
	before := env.PluginStatus("ct")
	gen := env.Status().ActiveGeneration
	cases := []struct{ name, binary, want string }{
		{"fails the verifier", e2e.Faulty(t, "verifier", "9.9.9"), "load ct stage"},
		{"exits at start", e2e.Faulty(t, "exit", "9.9.9"), "before the handshake"},
		{"unhealthy after activation", e2e.Faulty(t, "unhealthy=300ms", "9.9.9"), "unhealthy"},
		{"crashes after activation", e2e.Faulty(t, "crash=300ms", "9.9.9"), "exited"},
		{"mismatched ABI", e2e.Faulty(t, "abi", "9.9.9"), "abi"},
		{"mismatched map schema", e2e.Faulty(t, "schema", "9.9.9"), "schema mismatch on ct4"},
		{"not a plugin", "/bin/false", "not a hotpath plugin"},
	}
	pkts := streamPackets(t, env, s, srv)
	for _, c := range cases {
		res, err := upgrade(env, "ct", c.binary, 1500*time.Millisecond)
		if err == nil {
			t.Fatalf("%s: upgrade succeeded: %+v", c.name, res)
		}
		if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(c.want)) {
			t.Errorf("%s: message lacks %q: %v", c.name, c.want, err)
		}
		t.Logf("%s: %v", c.name, err)
		p := env.PluginStatus("ct")
		if p.Pid != before.Pid || p.Version != before.Version || !p.GCLease {
			t.Fatalf("%s: old instance not kept: %+v (was %+v)", c.name, p, before)
		}
		if g := env.Status().ActiveGeneration; g != gen {
			t.Fatalf("%s: generation %d, want %d back", c.name, g, gen)
		}
		if res != nil && res.NewPid > 0 && running(res.NewPid) {
			t.Errorf("%s: new instance %d left running", c.name, res.NewPid)
		}
		now := streamPackets(t, env, s, srv)
		if now <= pkts {
			t.Errorf("%s: traffic not tracked (%d -> %d)", c.name, pkts, now)
		}
		pkts = now
	}
	if st := s.Stop(); st.Err != nil || st.MaxGap > 500*time.Millisecond {
		t.Errorf("stream across broken upgrades: %+v", st)
	}
	for reason, n := range drops(t, env) {
		if n != 0 {
			t.Errorf("%d packets dropped as %s", n, reason)
		}
	}
}

func TestPrivilegedUpgradeSupervisorKilledMidway(t *testing.T) {
	env, s, srv := streamEnv(t)
	before := env.PluginStatus("ct")
	gen := env.Status().ActiveGeneration
	v2 := e2e.Variant(t, "hotpath-ct", ctPkg, "2.0.0")
	done := make(chan error, 1)
	go func() {
		_, err := upgrade(env, "ct", v2, 5*time.Second)
		done <- err
	}()
	// Kill the supervisor inside the health window, after the flip.
	waitFor(t, "the upgrade to flip", 10*time.Second, func() bool {
		st, _ := supervisor.LoadState(env.StateDir)
		return st != nil && st.Upgrade != nil && st.Upgrade.Phase == "flipped"
	})
	st, _ := supervisor.LoadState(env.StateDir)
	newPid := st.Upgrade.New.Pid
	env.Sup.Kill(syscall.SIGKILL)
	env.Sup.Wait(5 * time.Second)
	<-done

	env.StartSupervisor(env.PluginFlag("ct"))
	p := env.PluginStatus("ct")
	if p.Pid != before.Pid || p.Version != before.Version || !p.GCLease {
		t.Errorf("after restart: %+v, want the old instance %d with the lease", p, before.Pid)
	}
	if len(env.Plugins()) != 1 {
		t.Errorf("plugins %+v", env.Plugins())
	}
	if running(newPid) {
		t.Errorf("half-upgraded instance %d still runs", newPid)
	}
	if g := env.Status().ActiveGeneration; g != gen {
		t.Errorf("generation %d after restart, want %d", g, gen)
	}
	if st, _ := supervisor.LoadState(env.StateDir); st.Upgrade != nil {
		t.Errorf("upgrade still recorded: %+v", st.Upgrade)
	}
	pkts := streamPackets(t, env, s, srv)
	time.Sleep(300 * time.Millisecond)
	if now := streamPackets(t, env, s, srv); now <= pkts {
		t.Errorf("traffic not tracked after restart")
	}
	if st := s.Stop(); st.Err != nil || st.MaxGap > 500*time.Millisecond {
		t.Errorf("stream %+v", st)
	}
	// The node is consistent: the next upgrade works.
	if _, err := upgrade(env, "ct", v2, 500*time.Millisecond); err != nil {
		t.Fatalf("upgrade after recovery: %v", err)
	}
}

func running(pid int) bool {
	return syscall.Kill(pid, 0) == nil && !zombie(pid)
}
