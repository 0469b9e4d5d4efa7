package leastconn

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/plugin"
)

// TestPrivilegedPluginLifecycle drives the plugin as the supervisor does:
// Describe, Load pins the stage, Activate with the lease counts at once and
// keeps counting, Invoke reports, Deactivate stops the loop.
func TestPrivilegedPluginLifecycle(t *testing.T) {
	s := newStage(t)
	s.service(t, 7, vendor, 11, 12)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p := New(nil)
	d, err := p.Describe(ctx, &plugin.DescribeRequest{})
	if err != nil || d.Name != Name || len(d.Slots) != 1 || d.Slots[0] != "lb-select" || !d.GC {
		t.Fatalf("describe: %+v %v", d, err)
	}
	cfg := json.RawMessage(`{"refresh": "100ms"}`)
	resp, err := p.Load(ctx, &plugin.LoadRequest{Generation: 3, BPFFS: s.Layout.Root, Config: cfg})
	if err != nil || resp.Programs["lb-select"] != s.Layout.Prog(Name, 3, "lb-select") {
		t.Fatalf("load: %+v %v", resp, err)
	}
	if _, err := p.Load(ctx, &plugin.LoadRequest{Generation: 4, BPFFS: s.Layout.Root, Config: json.RawMessage(`{"refresh": 5}`)}); err == nil {
		t.Fatal("a bad config loaded")
	}

	key := abi.CTTuple{Saddr: 1, Daddr: 2, Sport: 3, Dport: 4, Nexthdr: 6, Flags: abi.TupleService}
	put := func(backend uint32) {
		v := abi.CTEntry{Lifetime: ctmap.Now() + 100, Flags: abi.CTSeenNonSyn, BackendId: backend}
		if err := s.Maps[abi.MapCT4].Put(key, v); err != nil {
			t.Fatal(err)
		}
	}
	put(11)
	if err := p.Activate(ctx, &plugin.ActivateRequest{Generation: 3, BPFFS: s.Layout.Root, Config: cfg, GCLease: true}); err != nil {
		t.Fatal(err)
	}
	if n := s.count(t, 11); n != 1 {
		t.Fatalf("after Activate backend 11 counts %d, want 1 at once", n)
	}
	put(12) // the flow's entry now names backend 12: the loop must notice
	waitCount(t, s, 12, 1)
	if n := s.count(t, 11); n != 0 {
		t.Fatalf("backend 11 still counts %d", n)
	}
	if h, err := p.Health(ctx); err != nil || !h.Healthy {
		t.Fatalf("health: %+v %v", h, err)
	}
	if err := p.Deactivate(ctx); err != nil {
		t.Fatal(err)
	}
	// The loop has stopped: the last refresh it recorded saw backend 12.
	// (Before, a refresh may have written the map and not yet recorded.)
	out, err := p.Invoke(ctx, &plugin.InvokeRequest{Command: "counts"})
	if err != nil || string(out) != `{"11":0,"12":1}` {
		t.Fatalf("counts: %s %v", out, err)
	}
	if _, err := p.Invoke(ctx, &plugin.InvokeRequest{Command: "nonsense"}); err == nil {
		t.Fatal("unknown command accepted")
	}
	// Its client_golang metrics agree with the counts.
	fams, err := p.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		byName[f.GetName()] = f
	}
	if r := byName["refreshes_total"]; r.GetType() != dto.MetricType_COUNTER || r.GetMetric()[0].GetCounter().GetValue() < 2 {
		t.Fatalf("refreshes_total: %v", r)
	}
	active := map[string]float64{}
	for _, m := range byName["active_connections"].GetMetric() {
		active[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
	}
	if active["11"] != 0 || active["12"] != 1 || byName["active_connections"].GetType() != dto.MetricType_GAUGE {
		t.Fatalf("active_connections: %v", byName["active_connections"])
	}
	if _, err := p.Describe(ctx, &plugin.DescribeRequest{Config: json.RawMessage(`{"refresh": 5}`)}); err == nil {
		t.Fatal("describe accepted a bad config")
	}
	put(11)
	time.Sleep(300 * time.Millisecond)
	if n := s.count(t, 12); n != 1 {
		t.Fatalf("after Deactivate the counts still changed (backend 12: %d)", n)
	}
}

func waitCount(t *testing.T, s *stage, id uint32, want uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.count(t, id) != want {
		if time.Now().After(deadline) {
			t.Fatalf("backend %d counts %d, want %d", id, s.count(t, id), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
