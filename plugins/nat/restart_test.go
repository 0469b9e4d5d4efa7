package nat_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/supervisor"
)

const natPkg = "github.com/hotpath/hotpath/plugins/nat"

// TestPrivilegedNATKillAndUpgradesUnderStreams: 20 masqueraded TCP streams
// from 2 pods survive a kill -9 of the nat plugin and two upgrades of it:
// the mappings live in the supervisor's map, the stages stay in the
// pipeline, and not one stream breaks.
func TestPrivilegedNATKillAndUpgradesUnderStreams(t *testing.T) {
	env := natEnv(t, nil, "", "a", "b")
	env.StartSupervisor()
	if _, err := lab.EchoServer(env.Lab.External, ext(8082)); err != nil {
		t.Fatal(err)
	}
	var streams []*lab.Stream
	for i := 0; i < 20; i++ {
		pod := env.Lab.Pods[[]string{"a", "b"}[i%2]]
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := lab.StartStream(ctx, pod.NS, ext(8082), 256, 10*time.Millisecond)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	defer func() {
		for _, s := range streams {
			s.Stop()
		}
	}()
	waitFor(t, "stream traffic", 5*time.Second, func() bool {
		for _, s := range streams {
			if s.Stats().Rounds < 10 {
				return false
			}
		}
		return true
	})
	mapped := func() map[string]string {
		out := map[string]string{}
		for _, r := range natList(t, env) {
			out[r.Src] = r.NatSrc
		}
		return out
	}
	before := mapped()

	p := env.PluginStatus("nat")
	if err := syscall.Kill(p.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "nat plugin back", 10*time.Second, func() bool {
		q := env.PluginStatus("nat")
		return q.Pid != p.Pid && q.Pid > 0 && q.Healthy && q.GCLease
	})
	for i, version := range []string{"1.0.0-a", "1.0.0-b"} {
		out, err := env.CLI("plugin", "upgrade", "nat", "--binary", e2e.Variant(t, "hotpath-nat", natPkg, version), "--health-window", "500ms", "-o", "json")
		var res supervisor.UpgradeResult
		json.Unmarshal(out, &res)
		if err != nil {
			t.Fatalf("upgrade %d: %v\n%s", i, err, out)
		}
		env.Remember(res.NewPid)
		q := env.PluginStatus("nat")
		if q.Version != version || !q.GCLease || !q.Healthy {
			t.Fatalf("after upgrade %d: %+v", i, q)
		}
		time.Sleep(300 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	for i, s := range streams {
		st := s.Stop()
		if st.Err != nil {
			t.Errorf("stream %d broke: %v", i, st.Err)
		} else if st.MaxGap > time.Second {
			t.Errorf("stream %d stalled for %s", i, st.MaxGap)
		}
	}
	after := mapped()
	for src, natSrc := range before {
		if after[src] != natSrc {
			t.Errorf("flow %s left as %s before, %q after", src, natSrc, after[src])
		}
	}
	for _, r := range []abi.Reason{abi.AbiHpReasonHP_R_MISSED_TAIL_CALL, abi.AbiHpReasonHP_R_NAT_EXHAUSTED, abi.AbiHpReasonHP_R_GEN_MISMATCH} {
		if n := dropped(t, env, r); n != 0 {
			t.Errorf("%d packets dropped as %s", n, abi.ReasonName(r))
		}
	}
}

// TestPrivilegedNATRefusesBadConfig: a bad config stops the start with an
// error naming the key, and nothing is attached.
func TestPrivilegedNATRefusesBadConfig(t *testing.T) {
	for _, c := range []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{"masquerade_device": "nosuchdev0"}, "masquerade_device nosuchdev0"},
		{map[string]any{"port_range": "9-1"}, "port_range"},
	} {
		env := natEnv(t, c.cfg, "", "a")
		out, err := env.RunSupervisor(30 * time.Second)
		if err == nil {
			t.Fatalf("supervisor started with nat config %v", c.cfg)
		}
		if !contains(out, c.want) {
			t.Errorf("nat config %v: supervisor said\n%s\nwant an error naming %q", c.cfg, out, c.want)
		}
		if links, _ := filepath.Glob(filepath.Join(env.Lab.BPFFS, "links", "*", "*")); len(links) != 0 {
			t.Errorf("nat config %v: links attached after a refused start: %v", c.cfg, links)
		}
	}
}

// TestPrivilegedNATMapSizedByConfig: map_sizes sets the nat4 map's size;
// ct, lb and nat load against the resized map and masquerade works.
func TestPrivilegedNATMapSizedByConfig(t *testing.T) {
	env := natEnv(t, nil, "", "a")
	var cfg supervisor.Config
	b, err := os.ReadFile(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.MapSizes = map[string]uint32{abi.MapNAT4: 4096}
	cfg.Plugins = append(cfg.Plugins, supervisor.PluginConfig{Name: "lb", Path: env.Bin + "/hotpath-lb"})
	env.WriteConfig(cfg)
	env.StartSupervisor()
	size := uint32(0)
	for _, m := range env.Status().Maps {
		if m.Name == abi.MapNAT4 {
			size = m.MaxEntries
		}
	}
	if size != 4096 {
		t.Fatalf("nat4 has %d entries, want 4096 from map_sizes", size)
	}
	if _, err := lab.ServePeer(env.Lab.External, ext(8080)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	seen, err := ask(ctx, env.Lab.Pods["a"].NS, "tcp", ext(8080))
	if err != nil || seen.Addr() != lab.UplinkIP {
		t.Fatalf("through a resized nat4: saw %v, %v", seen, err)
	}
}
