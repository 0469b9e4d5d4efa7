package ct

import (
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/plugintest"
)

func TestNextIntervalIsCiliums(t *testing.T) {
	min, max := 10*time.Second, 12*time.Hour
	cases := []struct {
		prev  time.Duration
		ratio float64
		want  time.Duration
	}{
		{5 * time.Minute, 0, 5 * time.Minute},                 // nothing deleted: unchanged
		{1500 * time.Millisecond, 0, 1500 * time.Millisecond}, // ... not even rounded
		{5 * time.Minute, 0.01, 450 * time.Second},            // < 5%: x1.5
		{1500 * time.Millisecond, 0.01, 2 * time.Second},      // rounded to seconds
		{5 * time.Minute, 0.10, 5 * time.Minute},              // 5..25%: unchanged
		{5 * time.Minute, 0.25, 5 * time.Minute},              // 25% is not more than 25%
		{5 * time.Minute, 0.05, 5 * time.Minute},              // 5% is not less than 5%
		{5 * time.Minute, 0.50, 150 * time.Second},            // > 25%: shorter in proportion
		{5 * time.Minute, 1.0, 30 * time.Second},              // capped at 10x shorter
		{12 * time.Second, 0.95, 10 * time.Second},            // never below min
		{10 * time.Hour, 0.01, 12 * time.Hour},                // never above max
		{5 * time.Second, 0.01, 8 * time.Second},              // growing is not held to min
		{13 * time.Hour, 0.5, 6*time.Hour + 30*time.Minute},   // shrinking is not held to max
	}
	for _, c := range cases {
		if got := NextInterval(c.prev, c.ratio, min, max); got != c.want {
			t.Errorf("NextInterval(%s, %.2f) = %s, want %s", c.prev, c.ratio, got, c.want)
		}
	}
}

func TestAdjustRatioIsCiliums(t *testing.T) {
	cases := []struct {
		ratio           float64
		planned, actual time.Duration
		want            float64
	}{
		{0.1, time.Minute, time.Minute, 0.1},      // on time: as measured
		{0.1, time.Minute, 2 * time.Minute, 0.1},  // late: as measured
		{0.1, time.Minute, 0, 0.1},                // no previous pass
		{0.1, time.Minute, 20 * time.Second, 0.3}, // a third of the interval: three times
		{0.02, 5 * time.Minute, time.Minute, 0.1}, // 2% in a fifth is 10% per interval
	}
	for _, c := range cases {
		if got := AdjustRatio(c.ratio, c.planned, c.actual); got < c.want-1e-9 || got > c.want+1e-9 {
			t.Errorf("AdjustRatio(%.2f, %s, %s) = %.3f, want %.3f", c.ratio, c.planned, c.actual, got, c.want)
		}
	}
	// An early pass that deleted 10% in a third of the interval shortens
	// it as if 30% had gone, instead of leaving it unchanged.
	if got := NextInterval(time.Minute, AdjustRatio(0.1, time.Minute, 20*time.Second), 10*time.Second, time.Hour); got != 42*time.Second {
		t.Errorf("interval after an early pass = %s, want 42s", got)
	}
}

func TestConfigRejectsBadValues(t *testing.T) {
	for _, raw := range []string{
		`{"lifetimes": {"tcp": "0s"}}`, `{"lifetimes": {"syn": "-5s"}}`, `{"gc": {"min": "1m", "max": "10s"}}`,
		`{"gc": {"start": "1s"}}`, `{"lifetimes": {"close": "soon"}}`, `{"lifetimes": 7}`,
	} {
		if _, err := ParseConfig([]byte(raw)); err == nil {
			t.Errorf("config %s accepted", raw)
		}
	}
	cfg, err := ParseConfig([]byte(`{"lifetimes": {"close": "2s"}, "gc": {"start": 30}}`))
	if err != nil || cfg.Lifetimes.Close.D() != 2*time.Second || cfg.GC.Start.D() != 30*time.Second || cfg.Lifetimes.TCP.D() != 6*time.Hour {
		t.Errorf("config = %+v, %v", cfg, err)
	}
}

// TestPrivilegedGCRechecksBeforeDelete: an entry found expired by the scan
// but refreshed by the datapath before its delete must stay.
func TestPrivilegedGCRechecksBeforeDelete(t *testing.T) {
	h := plugintest.New(t)
	m := h.Maps[abi.MapCT4]
	now := ctmap.Now()
	expired := abi.CTTuple{Saddr: 1, Daddr: 2, Sport: 3, Dport: 4, Nexthdr: 6}
	refreshed := abi.CTTuple{Saddr: 5, Daddr: 6, Sport: 7, Dport: 8, Nexthdr: 6}
	live := abi.CTTuple{Saddr: 9, Daddr: 10, Sport: 11, Dport: 12, Nexthdr: 6}
	for k, life := range map[abi.CTTuple]uint32{expired: now - 5, refreshed: now - 5, live: now + 100} {
		if err := m.Put(&k, &abi.CTEntry{Packets: 1, Lifetime: life}); err != nil {
			t.Fatal(err)
		}
	}
	calls := 0
	clock := func() uint32 {
		calls++
		if calls == 2 { // between the scan and the first re-check
			if err := m.Update(&refreshed, &abi.CTEntry{Packets: 2, Lifetime: now + 60}, ebpf.UpdateExist); err != nil {
				t.Fatal(err)
			}
		}
		return now
	}
	res, err := Pass(m, clock)
	if err != nil {
		t.Fatal(err)
	}
	if res.Scanned != 3 || res.Deleted != 1 || res.Kept != 1 {
		t.Fatalf("pass %+v: want 3 scanned, 1 deleted, 1 kept", res)
	}
	var v abi.CTEntry
	if err := m.Lookup(&expired, &v); err == nil {
		t.Error("expired entry survived")
	}
	for _, k := range []abi.CTTuple{refreshed, live} {
		if err := m.Lookup(&k, &v); err != nil {
			t.Errorf("entry %+v deleted: %v", k, err)
		}
	}
}

func TestPrivilegedFlushAndList(t *testing.T) {
	h := plugintest.New(t)
	for i := uint32(1); i <= 3; i++ {
		k := abi.CTTuple{Saddr: i, Daddr: 2, Sport: 3, Dport: 4, Nexthdr: 17}
		if err := h.Maps[abi.MapCTAny4].Put(&k, &abi.CTEntry{Packets: uint64(i), Lifetime: ctmap.Now() + 30}); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := ctmap.List(h.Layout)
	if err != nil || len(recs) != 3 || recs[0].Proto != "UDP" || recs[0].Map != "ct_any4" {
		t.Fatalf("list = %+v, %v", recs, err)
	}
	n, err := ctmap.Flush(h.Layout)
	if err != nil || n != 3 {
		t.Fatalf("flush = %d, %v", n, err)
	}
	if recs, _ := ctmap.List(h.Layout); len(recs) != 0 {
		t.Fatalf("%d entries after flush", len(recs))
	}
}

// TestPrivilegedSweepDeletesOnlyExpired: the in-kernel pass deletes expired
// entries and keeps live ones, on both CT maps.
func TestPrivilegedSweepDeletesOnlyExpired(t *testing.T) {
	h := plugintest.New(t)
	now := ctmap.Now()
	for _, name := range ctmap.Maps {
		m := h.Maps[name]
		for i := uint32(0); i < 1000; i++ {
			life := now + 100
			if i%4 == 0 {
				life = now - 1
			}
			k := abi.CTTuple{Saddr: i, Daddr: 2, Sport: 3, Dport: 4, Nexthdr: 6}
			if err := m.Put(&k, &abi.CTEntry{Lifetime: life}); err != nil {
				t.Fatal(err)
			}
		}
		s, err := NewSweeper(m)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Pass(now)
		s.Close()
		if err != nil || res.Scanned != 1000 || res.Deleted != 250 {
			t.Fatalf("%s: sweep %+v, %v: want 1000 scanned, 250 deleted", name, res, err)
		}
		left := 0
		ctmap.Scan(m, func(k *abi.CTTuple, v *abi.CTEntry) bool {
			left++
			if v.Lifetime < now {
				t.Errorf("%s: expired entry %+v survived", name, k)
			}
			return true
		})
		if left != 750 {
			t.Fatalf("%s: %d entries left, want 750", name, left)
		}
	}
	gc := &GC{Maps: map[string]*ebpf.Map{abi.MapCT4: h.Maps[abi.MapCT4]}, Cfg: DefaultConfig().GC}
	gc.Prepare()
	defer gc.Close()
	if gc.Stats().Method != "sweep" {
		t.Fatalf("GC method %q, want sweep", gc.Stats().Method)
	}
}
