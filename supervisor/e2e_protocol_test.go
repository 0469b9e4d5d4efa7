package supervisor_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hotpath/hotpath/core/plugin"
	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/lab"
)

// TestPrivilegedUpgradeProtocolVersions: under live traffic, ct is upgraded
// to a build of another major protocol version (refused at the handshake,
// both versions named, the datapath untouched), then to a build one minor
// version older (it loads and runs; the supervisor skips the Metrics call
// that version lacks and /metrics still answers), then back.
func TestPrivilegedUpgradeProtocolVersions(t *testing.T) {
	env := e2e.New(t, "a", "b")
	addr := "127.0.0.1:9403"
	env.Extra = []string{"--metrics-addr", addr}
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

	current := plugin.VersionString(plugin.ProtocolVersion, plugin.ProtocolMinor)
	before := env.PluginStatus("ct")
	if before.Protocol != current {
		t.Fatalf("ct speaks %q, want %s", before.Protocol, current)
	}
	gen := env.Status().ActiveGeneration
	pkts := streamPackets(t, env, s, srv)

	// Another major version.
	major := e2e.ProtocolVariant(t, "hotpath-ct", ctPkg, "7.0.0", "serveMajor", "3")
	if _, err := upgrade(env, "ct", major, time.Second); err == nil ||
		!strings.Contains(err.Error(), "protocol 3.x") || !strings.Contains(err.Error(), "supervisor speaks "+current) {
		t.Fatalf("upgrade to protocol 3: %v, want a refusal naming 3.x and %s", err, current)
	}
	p := env.PluginStatus("ct")
	if p.Pid != before.Pid || p.Version != before.Version || !p.GCLease || env.Status().ActiveGeneration != gen {
		t.Fatalf("after a refused upgrade: %+v, generation %d (was %+v, %d)", p, env.Status().ActiveGeneration, before, gen)
	}
	if now := streamPackets(t, env, s, srv); now <= pkts {
		t.Fatalf("traffic not tracked after the refusal (%d -> %d)", pkts, now)
	} else {
		pkts = now
	}

	// One minor version older.
	older := plugin.VersionString(plugin.ProtocolVersion, 0)
	minor := e2e.ProtocolVariant(t, "hotpath-ct", ctPkg, "0.9.0-older", "serveMinor", "0")
	if _, err := upgrade(env, "ct", minor, time.Second); err != nil {
		t.Fatalf("upgrade to protocol %s: %v", older, err)
	}
	p = env.PluginStatus("ct")
	if p.Version != "0.9.0-older" || p.Protocol != older || !p.Healthy || !p.GCLease {
		t.Fatalf("older plugin: %+v, want version 0.9.0-older, protocol %s, healthy with the lease", p, older)
	}
	if now := streamPackets(t, env, s, srv); now <= pkts {
		t.Fatalf("traffic not tracked by the older plugin (%d -> %d)", pkts, now)
	} else {
		pkts = now
	}
	body := scrape(t, env, addr)
	metricValue(t, body, `hotpath_plugin_healthy{plugin="ct"}`)
	if strings.Contains(body, "hotpath_ct_gc_runs_total") {
		t.Errorf("metrics of a %s plugin, which has no Metrics call", older)
	}

	// And back to the current version, whose metrics come back.
	if _, err := upgrade(env, "ct", e2e.Variant(t, "hotpath-ct", ctPkg, "1.0.0-current"), time.Second); err != nil {
		t.Fatal(err)
	}
	if p := env.PluginStatus("ct"); p.Protocol != current {
		t.Fatalf("after upgrading back: %+v", p)
	}
	if now := streamPackets(t, env, s, srv); now <= pkts {
		t.Fatalf("traffic not tracked after upgrading back (%d -> %d)", pkts, now)
	}
	metricValue(t, scrape(t, env, addr), "hotpath_ct_gc_runs_total")
	if st := s.Stop(); st.Err != nil || st.MaxGap > 500*time.Millisecond {
		t.Errorf("stream across the upgrades: %+v", st)
	}
	for reason, n := range drops(t, env) {
		if n != 0 {
			t.Errorf("%d packets dropped as %s", n, reason)
		}
	}
}
