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
