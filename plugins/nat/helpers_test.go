package nat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/natmap"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/plugins/nat"
	"github.com/hotpath/hotpath/supervisor"
)

// natEnv is a lab with pods, the external namespace and a supervisor
// running ct and nat, masquerading 10.240.0.0/16 through the uplink.
func natEnv(t *testing.T, natCfg map[string]any, ctCfg string, pods ...string) *e2e.Env {
	t.Helper()
	env := e2e.NewWith(t, lab.Options{Pods: pods, External: true})
	cfg := map[string]any{"masquerade_device": lab.UplinkDevice, "cluster_cidrs": []string{"10.240.0.0/16"}}
	for k, v := range natCfg {
		cfg[k] = v
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	plugins := []supervisor.PluginConfig{{Name: "ct", Path: env.Bin + "/hotpath-ct"}, {Name: "nat", Path: env.Bin + "/hotpath-nat", Config: raw}}
	if ctCfg != "" {
		plugins[0].Config = json.RawMessage(ctCfg)
	}
	env.WriteConfig(supervisor.Config{Plugins: plugins})
	env.Extra = []string{"--device", lab.UplinkDevice}
	return env
}

// ask dials the external server from ns and returns the address the
// server saw.
func ask(ctx context.Context, ns *lab.NS, network, addr string) (netip.AddrPort, error) {
	line, err := ns.AskName(ctx, network, addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.ParseAddrPort(strings.TrimSpace(line))
}

func natStats(t *testing.T, env *e2e.Env) nat.Stats {
	t.Helper()
	out, err := env.CLI("plugin", "invoke", "nat", "stats")
	if err != nil {
		t.Fatal(err)
	}
	var st nat.Stats
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("decode nat stats: %v\n%s", err, out)
	}
	return st
}

func natList(t *testing.T, env *e2e.Env) []natmap.Record {
	t.Helper()
	var recs []natmap.Record
	env.JSON(&recs, "nat", "list")
	return recs
}

// dropped reads the datapath's counter of reason r, both directions.
func dropped(t *testing.T, env *e2e.Env, r abi.Reason) uint64 {
	t.Helper()
	m, err := ebpf.LoadPinnedMap(pin.Layout{Root: env.Lab.BPFFS}.Map(abi.MapMetrics), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var total uint64
	for dir := uint32(0); dir < 2; dir++ {
		var per []abi.Metric
		k := abi.MetricKey(r, dir)
		if err := m.Lookup(&k, &per); err != nil {
			t.Fatal(err)
		}
		for _, v := range per {
			total += v.Packets
		}
	}
	return total
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func inRange(p uint16, lo, hi uint16) bool { return p >= lo && p <= hi }

func ext(port int) string { return fmt.Sprintf("%s:%d", lab.ExternalIP, port) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }
