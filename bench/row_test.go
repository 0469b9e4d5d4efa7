package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestMedianAndTargets(t *testing.T) {
	if m := Median([]float64{5, 1, 3}); m != 3 {
		t.Errorf("median of 5,1,3 = %v", m)
	}
	if m := Median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median of 4,1,3,2 = %v", m)
	}
	r := Row{Samples: []float64{0.4, 0.6, 0.45}, Target: Below(0.5)}
	if !r.Met() {
		t.Error("median 0.45 misses ≤ 0.5")
	}
	r.Target = Above(0.5)
	if r.Met() {
		t.Error("median 0.45 meets ≥ 0.5")
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		v    float64
		unit string
		want string
	}{
		{44, UnitNs, "44.0 ns"},
		{0.306, UnitSeconds, "306 ms"},
		{0.000421, UnitSeconds, "421 µs"},
		{3.19e6, UnitEntries, "3.19 M entries/s"},
		{15800, UnitConns, "15.8 k conn/s"},
		{4985, UnitConns, "4985 conn/s"},
		{7.16e9, UnitBits, "7.16 Gbit/s"},
		{20.7 * (1 << 20), UnitBytes, "20.7 MiB"},
	} {
		if got := format(c.v, c.unit); got != c.want {
			t.Errorf("format(%v, %s) = %q, want %q", c.v, c.unit, got, c.want)
		}
	}
}

func TestReportTable(t *testing.T) {
	var buf bytes.Buffer
	out := []Outcome{{
		Suite: Suite{Name: "s"},
		Rows: []Row{
			{Suite: "s", Name: "a|b", Unit: UnitNs, Samples: []float64{2, 1, 3}, BaseName: "base", Base: []float64{1, 1, 1}},
			{Suite: "s", Name: "slow", Unit: UnitSeconds, Samples: []float64{1, 1, 1}, Target: Below(0.5)},
			{Suite: "s", Name: "later", Pending: "pending: needs x"},
		},
	}}
	Report(&buf, Env{Date: "d"}, out, 3, 3, time.Second)
	s := buf.String()
	for _, want := range []string{
		`| s | a\|b | 3 | 2.00 ns | 1.00 ns..3.00 ns | base | 1.00 ns (1.00 ns..1.00 ns) | 2.00× |  |  |`,
		"| ≤ 500 ms | no |",
		"| s | later | — | pending: needs x |",
		"MISSED TARGET s / slow",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
}

func TestRatioTargetsAndTail(t *testing.T) {
	r := Row{Samples: []float64{110, 120, 115}, Base: []float64{100, 100, 100}, Target: RatioBelow(1.15)}
	if !r.Met() {
		t.Error("ratio 1.15 misses ≤ 1.15×")
	}
	r.Target = RatioAbove(1.25)
	if r.Met() {
		t.Error("ratio 1.15 meets ≥ 1.25×")
	}
	r.Base = nil
	if r.Met() {
		t.Error("a ratio target without a baseline is met")
	}
	if p := P99([]float64{3, 1, 2}); p != 3 {
		t.Errorf("p99 of 3 samples = %v, want the largest", p)
	}
	var buf bytes.Buffer
	out := []Outcome{{Suite: Suite{Name: "s"}, Rows: []Row{
		{Suite: "s", Name: "swap", Unit: UnitSeconds, Samples: []float64{0.1, 0.2, 0.9}, Tail: true},
		{Suite: "s", Name: "rel", Unit: UnitConns, Samples: []float64{1, 1, 1}, Base: []float64{1, 1, 1}, BaseName: "b", Target: RatioAbove(1.25)},
		{Suite: "s", Name: "lost", Unit: UnitCount, Samples: []float64{0, 0, 0}, Target: Below(0)},
	}}}
	Report(&buf, Env{Date: "d"}, out, 3, 3, time.Second)
	s := buf.String()
	for _, want := range []string{
		"| 200 ms; p99 900 ms |",
		"| ≥ 1.25× baseline | no |",
		"MISSED TARGET s / rel: ratio 1×, target ≥ 1.25× baseline",
		"| lost | 3 | 0 | 0..0 |",
		"| ≤ 0 | yes |",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
}
