package lb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	dto "github.com/prometheus/client_model/go"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/core/plugin"
	"github.com/hotpath/hotpath/core/plugintest"
	"github.com/hotpath/hotpath/core/services"
	"github.com/hotpath/hotpath/plugins/lb/maglev"
)

// newPlugin is an activated lb plugin over a private bpffs with the shared
// maps, as the supervisor would leave it, but without the supervisor.
func newPlugin(t *testing.T, cfg string) (*Plugin, *plugintest.Harness) {
	t.Helper()
	h := plugintest.New(t)
	p := New(hclog.NewNullLogger())
	if err := p.Activate(context.Background(), &plugin.ActivateRequest{BPFFS: h.Layout.Root, Config: json.RawMessage(cfg)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Deactivate(context.Background()) })
	return p, h
}

func invoke(t *testing.T, p *Plugin, cmd string, args any) (json.RawMessage, error) {
	t.Helper()
	raw, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	return p.Invoke(context.Background(), &plugin.InvokeRequest{Command: cmd, Args: raw})
}

func mustInvoke(t *testing.T, p *Plugin, cmd string, args any) json.RawMessage {
	t.Helper()
	out, err := invoke(t, p, cmd, args)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return out
}

func list(t *testing.T, p *Plugin) []services.ServiceInfo {
	t.Helper()
	var out []services.ServiceInfo
	if err := json.Unmarshal(mustInvoke(t, p, "service-list", nil), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// tableAt reads a service's Maglev table out of the kernel, with the
// lb4_maglev chunk it starts at (nil, 0: none).
func tableAt(t *testing.T, p *Plugin, vip string) ([]uint32, uint32) {
	t.Helper()
	v, err := services.ParseVIP(vip)
	if err != nil {
		t.Fatal(err)
	}
	table, off, err := p.store.Table(v)
	if err != nil {
		t.Fatal(err)
	}
	return table, off
}

func TestPrivilegedLBPluginServiceLifecycle(t *testing.T) {
	p, h := newPlugin(t, `{"maglev_seed": 7}`)
	const vip = "10.96.0.10:80/tcp"
	mustInvoke(t, p, "service-add", services.ServiceAddArgs{VIP: vip, Algorithm: "maglev", MaglevTableSize: 509,
		Backends: backends("10.240.2.2:8080,weight=2", "10.240.2.3:8080")})

	svcs := list(t, p)
	if len(svcs) != 1 {
		t.Fatalf("%d services listed, want 1", len(svcs))
	}
	s := svcs[0]
	if s.VIP != vip || s.Algorithm != "maglev" || s.MaglevTableSize != 509 || len(s.Backends) != 2 ||
		s.Backends[0].Address != "10.240.2.2:8080" || s.Backends[0].Weight != 2 || s.Backends[1].Weight != 1 {
		t.Fatalf("listed %+v", s)
	}

	// The maps say what the list says.
	var val abi.LB4Service
	if err := h.Maps[abi.AbiMapLb4Services].Lookup(keyOf(mustVIP(t, vip)), &val); err != nil {
		t.Fatal(err)
	}
	if val.SvcId != s.ID || val.RevNatIndex != uint16(s.ID) || val.Count != 3 || val.Algorithm != uint8(services.Maglev) || val.MaglevSize != 509 {
		t.Fatalf("lb4_services value %+v", val)
	}
	var rn abi.LB4RevNat
	if err := h.Maps[abi.AbiMapLb4Revnat].Lookup(uint16(s.ID), &rn); err != nil || u32Addr(rn.Address).String() != "10.96.0.10" || ntohs(rn.Port) != 80 {
		t.Fatalf("rev-nat entry %+v (%v)", rn, err)
	}
	table1, off1 := tableAt(t, p, vip)
	if off1 == 0 {
		t.Fatal("no maglev table")
	}
	want, err := maglev.Build([]maglev.Backend{
		{ID: s.Backends[0].ID, Key: s.Backends[0].Address, Weight: 2},
		{ID: s.Backends[1].ID, Key: s.Backends[1].Address, Weight: 1},
	}, 509, 7)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(table1, want) {
		t.Fatal("kernel table differs from maglev.Build")
	}

	// set-algorithm writes a whole new table elsewhere and points the
	// service at it; the old chunks wait for a grace period. Random drops
	// the table.
	mustInvoke(t, p, "service-set-algorithm", services.SetAlgorithmArgs{VIP: vip, Algorithm: "maglev"})
	table2, off2 := tableAt(t, p, vip)
	if off2 == 0 || off2 == off1 || !slices.Equal(table2, want) {
		t.Fatalf("rebuild left the table at chunk %d (was %d)", off2, off1)
	}
	if !slices.Contains(p.store.space.dirty, extent{off1, chunksFor(509)}) {
		t.Errorf("the replaced table's chunks are not waiting for reuse: dirty %v", p.store.space.dirty)
	}
	mustInvoke(t, p, "service-set-algorithm", services.SetAlgorithmArgs{VIP: vip, Algorithm: "random"})
	if _, off := tableAt(t, p, vip); off != 0 {
		t.Fatalf("random service kept its table at chunk %d", off)
	}
	if s := list(t, p)[0]; s.Algorithm != "random" || len(s.Backends) != 2 {
		t.Fatalf("after switching to random: %+v", s)
	}
	mustInvoke(t, p, "service-set-algorithm", services.SetAlgorithmArgs{VIP: vip, Algorithm: "maglev", MaglevTableSize: 251})
	if table3, off3 := tableAt(t, p, vip); off3 == 0 || len(table3) != 251 {
		t.Fatalf("switch back to maglev M=251: table of %d at chunk %d", len(table3), off3)
	}

	// Backends: add, re-weight (same id), delete; each swaps the table.
	mustInvoke(t, p, "backend-add", services.BackendArgs{VIP: vip, Backend: backends("10.240.2.4:8080,weight=4")[0]})
	s = list(t, p)[0]
	if len(s.Backends) != 3 || s.Backends[2].Address != "10.240.2.4:8080" || s.Backends[2].Weight != 4 {
		t.Fatalf("after backend add: %+v", s.Backends)
	}
	newID := s.Backends[2].ID
	mustInvoke(t, p, "backend-add", services.BackendArgs{VIP: vip, Backend: backends("10.240.2.4:8080,weight=1")[0]})
	s = list(t, p)[0]
	if s.Backends[2].ID != newID || s.Backends[2].Weight != 1 {
		t.Fatalf("re-weighting changed the backend: %+v", s.Backends[2])
	}
	if got := slotsOf(t, h, s.ID); !reflect.DeepEqual(got, map[uint32]int{s.Backends[0].ID: 2, s.Backends[1].ID: 1, newID: 1}) {
		t.Fatalf("slots %v", got)
	}
	_, off4 := tableAt(t, p, vip)
	mustInvoke(t, p, "backend-del", services.BackendArgs{VIP: vip, Backend: services.BackendArg{Address: "10.240.2.2:8080"}})
	s = list(t, p)[0]
	if len(s.Backends) != 2 || s.Backends[0].Address != "10.240.2.3:8080" {
		t.Fatalf("after backend del: %+v", s.Backends)
	}
	if _, off := tableAt(t, p, vip); off == off4 {
		t.Fatal("backend del did not write a new table")
	}
	if n := entries(t, h, abi.AbiMapLb4Backends); n != 2 {
		t.Fatalf("lb4_backends holds %d entries, want 2", n)
	}
	if got := slotsOf(t, h, s.ID); len(got) != 2 {
		t.Fatalf("slots after delete: %v", got)
	}

	// Metrics.
	fams, err := p.Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		byName[f.GetName()] = f
	}
	value := func(name string, typ dto.MetricType) float64 {
		f := byName[name]
		if f.GetType() != typ || len(f.GetMetric()) == 0 {
			t.Fatalf("metric %s: %v, want a %v", name, f, typ)
		}
		m := f.GetMetric()[0]
		return m.GetGauge().GetValue() + m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
	}
	if value("services", dto.MetricType_GAUGE) != 1 || value("backends", dto.MetricType_GAUGE) != 2 ||
		value("table_rebuilds_total", dto.MetricType_COUNTER) != 6 || value("table_build_seconds", dto.MetricType_HISTOGRAM) != 6 {
		t.Fatalf("metrics %v", fams)
	}
	// One table of M=251 (16 chunks) is all that is used of lb4_maglev.
	if free, size := value("maglev_free_chunks", dto.MetricType_GAUGE), float64(p.store.maps.Maglev.MaxEntries()); free != size-1-16 ||
		value("maglev_largest_free_run", dto.MetricType_GAUGE) > free {
		t.Fatalf("maglev_free_chunks %v of %v, largest run %v", free, size, value("maglev_largest_free_run", dto.MetricType_GAUGE))
	}
	if value("commands_total", dto.MetricType_COUNTER) == 0 {
		t.Fatalf("no command counted: %v", byName["commands_total"])
	}

	// Delete leaves nothing behind.
	mustInvoke(t, p, "service-del", services.ServiceArgs{VIP: vip})
	for _, m := range []string{abi.AbiMapLb4Services, abi.AbiMapLb4Backends, abi.AbiMapLb4Slots, abi.AbiMapLb4Revnat} {
		if n := entries(t, h, m); n != 0 {
			t.Errorf("%s holds %d entries after service-del", m, n)
		}
	}
	if sp := p.store.space; sp.free() != sp.size-1 {
		t.Errorf("%d of %d lb4_maglev chunks free after service-del", sp.free(), sp.size-1)
	}
	if _, err := invoke(t, p, "service-del", services.ServiceArgs{VIP: vip}); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting it again: %v, want not found", err)
	}
}

func mustVIP(t *testing.T, s string) services.VIP {
	t.Helper()
	v, err := services.ParseVIP(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func slotsOf(t *testing.T, h *plugintest.Harness, svcID uint32) map[uint32]int {
	t.Helper()
	out := map[uint32]int{}
	var k abi.LB4SlotKey
	var v uint32
	it := h.Maps[abi.AbiMapLb4Slots].Iterate()
	for it.Next(&k, &v) {
		if k.SvcId == svcID {
			out[v]++
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func entries(t *testing.T, h *plugintest.Harness, name string) int {
	t.Helper()
	n, err := pin.Count(h.Maps[name])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// snapshot renders every lb map, to show a refused command changed nothing.
func snapshot(t *testing.T, h *plugintest.Harness) string {
	t.Helper()
	var b strings.Builder
	for _, name := range sharedNames {
		m := h.Maps[name]
		if name == abi.AbiMapLb4Maglev {
			// 64 MiB of chunks: render the tables service values name,
			// which is all a packet can reach.
			fmt.Fprintf(&b, "%s:%v\n", name, namedTables(t, h))
			continue
		}
		info, err := m.Info()
		if err != nil {
			t.Fatal(err)
		}
		k, v := make([]byte, info.KeySize), make([]byte, info.ValueSize)
		var keys []string
		it := m.Iterate()
		for it.Next(&k, &v) {
			keys = append(keys, fmt.Sprintf("%x=%x", k, v))
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		slices.Sort(keys)
		fmt.Fprintf(&b, "%s:%v\n", name, keys)
	}
	return b.String()
}

// namedTables renders every Maglev table a service value names.
func namedTables(t *testing.T, h *plugintest.Harness) []string {
	t.Helper()
	ms := &Maps{Services: h.Maps[abi.AbiMapLb4Services], Maglev: h.Maps[abi.AbiMapLb4Maglev]}
	var out []string
	var k abi.LB4Key
	var v abi.LB4Service
	it := ms.Services.Iterate()
	for it.Next(&k, &v) {
		if v.MaglevOffset == 0 {
			continue
		}
		table, err := ms.readTable(v.MaglevOffset, v.MaglevSize)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%d@%d=%v", v.SvcId, v.MaglevOffset, table))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func TestPrivilegedLBPluginRefusesBadInput(t *testing.T) {
	p, h := newPlugin(t, "")
	const vip = "10.96.0.10:80/tcp"
	mustInvoke(t, p, "service-add", services.ServiceAddArgs{VIP: vip, Algorithm: "maglev", Backends: backends("10.240.2.2:8080")})
	before := snapshot(t, h)
	w0, wBig := int64(0), int64(65536)
	bad := []struct {
		cmd  string
		args any
	}{
		{"service-add", services.ServiceAddArgs{VIP: vip, Backends: backends("10.240.2.3:8080")}}, // exists
		{"service-add", services.ServiceAddArgs{VIP: "10.96.0.11:80"}},
		{"service-add", services.ServiceAddArgs{VIP: "10.96.0.11:0/tcp"}},
		{"service-add", services.ServiceAddArgs{VIP: "10.96.0.11:80/sctp"}},
		{"service-add", services.ServiceAddArgs{VIP: "[fd00::1]:80/tcp"}},
		{"service-add", services.ServiceAddArgs{VIP: "10.96.0.11:80/tcp", Algorithm: "roundrobin"}},
		{"service-add", services.ServiceAddArgs{VIP: "10.96.0.11:80/tcp", MaglevTableSize: 1000}},
		{"service-add", services.ServiceAddArgs{VIP: "10.96.0.11:80/tcp", AffinityTimeoutSeconds: -1}},
		{"service-add", services.ServiceAddArgs{VIP: "10.96.0.11:80/tcp", Backends: []services.BackendArg{{Address: "10.240.2.3:8080", Weight: &w0}}}},
		{"service-add", services.ServiceAddArgs{VIP: "10.96.0.11:80/tcp", Backends: []services.BackendArg{{Address: "10.240.2.3:8080", Weight: &wBig}}}},
		{"service-add", services.ServiceAddArgs{VIP: "10.96.0.11:80/tcp", Backends: backends("10.240.2.3:8080", "10.240.2.4:8080", "10.240.2.3:8080")}},
		{"service-add", services.ServiceAddArgs{VIP: "10.96.0.11:80/tcp", Backends: []services.BackendArg{{Address: "10.240.2.3"}}}},
		{"service-add", map[string]any{"vip": "10.96.0.11:80/tcp", "algoritm": "maglev"}},
		{"service-set-algorithm", services.SetAlgorithmArgs{VIP: vip, Algorithm: "wrr"}},
		{"service-set-algorithm", services.SetAlgorithmArgs{VIP: vip, Algorithm: "maglev", MaglevTableSize: 7}},
		{"service-set-algorithm", services.SetAlgorithmArgs{VIP: "10.96.0.99:80/tcp", Algorithm: "random"}},
		{"backend-add", services.BackendArgs{VIP: vip, Backend: services.BackendArg{Address: "0.0.0.0:80"}}},
		{"backend-add", services.BackendArgs{VIP: vip, Backend: services.BackendArg{Address: "10.240.2.9:80", Weight: &w0}}},
		{"backend-add", services.BackendArgs{VIP: "10.96.0.99:80/tcp", Backend: services.BackendArg{Address: "10.240.2.9:80"}}},
		{"backend-del", services.BackendArgs{VIP: vip, Backend: services.BackendArg{Address: "10.240.2.9:80"}}},
		{"service-del", services.ServiceArgs{VIP: "10.96.0.99:80/udp"}},
		{"service-frobnicate", nil},
	}
	for _, c := range bad {
		if _, err := invoke(t, p, c.cmd, c.args); err == nil {
			t.Errorf("%s %+v: accepted", c.cmd, c.args)
		} else {
			t.Logf("%s: %v", c.cmd, err)
		}
	}
	// A table too small for the backends is refused before anything changes.
	if _, err := invoke(t, p, "service-add", services.ServiceAddArgs{VIP: "10.96.0.12:80/tcp", Algorithm: "maglev", MaglevTableSize: 251, Backends: manyBackends(252)}); err == nil {
		t.Error("252 backends in a 251-slot table: accepted")
	}
	if after := snapshot(t, h); after != before {
		t.Errorf("refused commands changed the maps:\nbefore %s\nafter  %s", before, after)
	}
}

func manyBackends(n int) []services.BackendArg {
	out := make([]services.BackendArg, n)
	for i := range out {
		out[i] = services.BackendArg{Address: fmt.Sprintf("10.241.%d.%d:80", i/250, 1+i%250)}
	}
	return out
}

// The kernel maps are the record: a new plugin instance lists what the old
// one made, and ids of deleted services and backends are not handed out
// again.
func TestPrivilegedLBPluginRestart(t *testing.T) {
	p, h := newPlugin(t, `{"maglev_seed": 7}`)
	mustInvoke(t, p, "service-add", services.ServiceAddArgs{VIP: "10.96.0.10:80/tcp", Algorithm: "maglev", Backends: backends("10.240.2.2:8080,weight=3", "10.240.2.3:8080")})
	mustInvoke(t, p, "service-add", services.ServiceAddArgs{VIP: "10.96.0.11:53/udp", Algorithm: "random", AffinityTimeoutSeconds: 30, Backends: backends("10.240.2.4:53")})
	mustInvoke(t, p, "service-add", services.ServiceAddArgs{VIP: "10.96.0.12:80/tcp", Backends: backends("10.240.2.5:80")})
	mustInvoke(t, p, "service-del", services.ServiceArgs{VIP: "10.96.0.12:80/tcp"})
	before := list(t, p)
	table, off := tableAt(t, p, "10.96.0.10:80/tcp")
	p.Deactivate(context.Background())

	p2 := New(hclog.NewNullLogger())
	if err := p2.Activate(context.Background(), &plugin.ActivateRequest{BPFFS: h.Layout.Root, Config: json.RawMessage(`{"maglev_seed": 7}`)}); err != nil {
		t.Fatal(err)
	}
	defer p2.Deactivate(context.Background())
	if after := list(t, p2); !reflect.DeepEqual(after, before) {
		t.Fatalf("restarted plugin lists\n%+v\nwant\n%+v", after, before)
	}
	if again, off2 := tableAt(t, p2, "10.96.0.10:80/tcp"); off2 != off || !slices.Equal(again, table) {
		t.Fatal("restart with the same seed rebuilt the table")
	}
	res := mustInvoke(t, p2, "service-add", services.ServiceAddArgs{VIP: "10.96.0.13:80/tcp", Backends: backends("10.240.2.6:80")})
	var s services.ServiceInfo
	json.Unmarshal(res, &s)
	if s.ID != 4 || s.Backends[0].ID != 5 {
		t.Fatalf("new service got id %d, backend id %d; want 4 and 5 (ids of deleted ones are not reused)", s.ID, s.Backends[0].ID)
	}
	p2.Deactivate(context.Background())

	// Another seed: the tables are rebuilt, the same way every node would.
	p3 := New(hclog.NewNullLogger())
	if err := p3.Activate(context.Background(), &plugin.ActivateRequest{BPFFS: h.Layout.Root, Config: json.RawMessage(`{"maglev_seed": 8}`)}); err != nil {
		t.Fatal(err)
	}
	defer p3.Deactivate(context.Background())
	if again, off3 := tableAt(t, p3, "10.96.0.10:80/tcp"); off3 == off || slices.Equal(again, table) {
		t.Fatal("a new seed did not rebuild the table")
	}
}

func TestPrivilegedLBPluginDescribeAndLoad(t *testing.T) {
	h := plugintest.New(t)
	p := New(hclog.NewNullLogger())
	d, err := p.Describe(context.Background(), &plugin.DescribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "lb" || d.GC || !slices.Equal(d.Slots, AllSlots) {
		t.Fatalf("description %+v", d)
	}
	if _, err := invoke(t, p, "service-list", nil); err == nil {
		t.Fatal("an inactive plugin answered service-list")
	}
	resp, err := p.Load(context.Background(), &plugin.LoadRequest{Generation: 3, BPFFS: h.Layout.Root})
	if err != nil {
		t.Fatal(err)
	}
	for _, slot := range AllSlots {
		if path := resp.Programs[slot]; path != h.Layout.Prog("lb", 3, slot) || !fileExists(path) {
			t.Errorf("slot %s pinned at %q", slot, path)
		}
	}
	external := json.RawMessage(`{"select": "external"}`)
	d, err = p.Describe(context.Background(), &plugin.DescribeRequest{Config: external})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(d.Slots, SlotSelect) || len(d.Slots) != 3 {
		t.Fatalf("with select external the plugin claims %v, want all but %s", d.Slots, SlotSelect)
	}
	if _, ok := d.Hooks[SlotSelect]; ok {
		t.Fatalf("hooks given for %s, which it does not claim: %v", SlotSelect, d.Hooks)
	}
	if _, err := p.Describe(context.Background(), &plugin.DescribeRequest{Config: json.RawMessage(`{"select": "vendor"}`)}); err == nil || !strings.Contains(err.Error(), "select") {
		t.Fatalf("select vendor: %v, want an error naming select", err)
	}
	resp, err = p.Load(context.Background(), &plugin.LoadRequest{Generation: 4, BPFFS: h.Layout.Root, Config: external})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := resp.Programs[SlotSelect]; ok || len(resp.Programs) != 3 {
		t.Fatalf("loaded %v", resp.Programs)
	}
	if _, err := p.Load(context.Background(), &plugin.LoadRequest{Generation: 5, BPFFS: h.Layout.Root, Config: json.RawMessage(`{"algorithm":"wrr"}`)}); err == nil {
		t.Fatal("bad config accepted")
	}
	if len(resp.Cgroup) != 0 {
		t.Fatalf("cgroup programs without socket_lb: %v", resp.Cgroup)
	}
	// Socket LB: four cgroup programs, pinned for the generation; none
	// when a vendor owns selection, which a cgroup hook cannot call.
	resp, err = p.Load(context.Background(), &plugin.LoadRequest{Generation: 6, BPFFS: h.Layout.Root, Config: json.RawMessage(`{"socket_lb": true}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(resp.Cgroup)); !slices.Equal(got, plugin.CgroupPoints()) {
		t.Fatalf("socket LB loaded cgroup programs for %v, want %v", got, plugin.CgroupPoints())
	}
	for point, path := range resp.Cgroup {
		if path != h.Layout.Prog("lb", 6, "cgroup-"+point) || !fileExists(path) {
			t.Errorf("cgroup program %s pinned at %q", point, path)
		}
	}
	resp, err = p.Load(context.Background(), &plugin.LoadRequest{Generation: 7, BPFFS: h.Layout.Root, Config: json.RawMessage(`{"socket_lb": true, "select": "external"}`)})
	if err != nil || len(resp.Cgroup) != 0 {
		t.Fatalf("socket LB with select external: %v %v, want no cgroup programs", resp.Cgroup, err)
	}
}

func TestPrivilegedLBApplyIsAllOrNothingOnBadInput(t *testing.T) {
	h := newLB(t)
	var good []services.ServiceAddArgs
	for i := 0; i < 300; i++ {
		good = append(good, services.ServiceAddArgs{VIP: fmt.Sprintf("10.97.%d.%d:80/tcp", i/250, i%250+1), Algorithm: "random",
			Backends: []services.BackendArg{{Address: "10.240.2.2:8080"}}})
	}
	bad := append(append([]services.ServiceAddArgs{}, good...), services.ServiceAddArgs{VIP: "10.97.9.9:0/tcp"})
	if _, err := Run(h.store, "service-apply", mustJSON(t, bad)); err == nil {
		t.Fatal("apply with a bad service accepted")
	}
	if l, _ := h.store.List(); len(l) != 0 {
		t.Fatalf("bad apply added %d services", len(l))
	}
	res, err := Run(h.store, "service-apply", mustJSON(t, good))
	if err != nil || res.(services.ApplyResult).Added != 300 {
		t.Fatalf("apply = %+v, %v", res, err)
	}
	if l, _ := h.store.List(); len(l) != 300 {
		t.Fatalf("%d services after apply", len(l))
	}
}
