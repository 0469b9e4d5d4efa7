package bench

import (
	"fmt"
	"math"
	"slices"
)

// Row is one line of the table. Samples are raw values in Unit; the table
// shows their median and min..max.
type Row struct {
	Suite string
	Name  string // what was measured, with every parameter that matters
	Unit  string // see format
	// Samples has one value per run.
	Samples []float64
	// Base are the baseline's samples, measured in the same run; BaseName
	// says what the baseline is. Ratio = median(Samples) / median(Base).
	BaseName string
	Base     []float64
	// Target, if set, is checked against the median.
	Target *Target
	// Pending rows stand for a measurement that could not run on this
	// machine: the text says why.
	Pending string
	// Note is a short remark printed under the table (errors seen, etc.).
	Note string
	// Tail marks samples that are single events (one upgrade, one swap)
	// rather than per-run means: the median cell also shows their p99,
	// since a rare slow event is what such a row is about.
	Tail bool
}

// Target is a bound the median must meet: Max true means "at most Value".
// With Ratio set, the bound is on the row's ratio (median / baseline
// median) instead: most goals are relative to a baseline measured in the
// same run, which is what survives the VM's noise.
type Target struct {
	Value float64
	Max   bool
	Ratio bool
	Why   string // printed with a miss: the measured reason
}

// Below is a target the median must not exceed.
func Below(v float64) *Target { return &Target{Value: v, Max: true} }

// Above is a target the median must reach.
func Above(v float64) *Target { return &Target{Value: v} }

// RatioBelow is a target the ratio to the baseline must not exceed.
func RatioBelow(v float64) *Target { return &Target{Value: v, Max: true, Ratio: true} }

// RatioAbove is a target the ratio to the baseline must reach.
func RatioAbove(v float64) *Target { return &Target{Value: v, Ratio: true} }

// Because returns a copy of t that explains a miss with why.
func (t *Target) Because(why string) *Target {
	c := *t
	c.Why = why
	return &c
}

// Met reports whether the row meets its target (false without samples,
// or without a baseline for a ratio target).
func (r Row) Met() bool {
	v, ok := r.targetValue()
	if !ok {
		return false
	}
	if r.Target.Max {
		return v <= r.Target.Value
	}
	return v >= r.Target.Value
}

// targetValue is what the target is checked against: the median, or the
// ratio for a ratio target.
func (r Row) targetValue() (float64, bool) {
	if r.Target == nil || len(r.Samples) == 0 {
		return 0, false
	}
	m := Median(r.Samples)
	if !r.Target.Ratio {
		return m, true
	}
	if len(r.Base) == 0 || Median(r.Base) == 0 {
		return 0, false
	}
	return m / Median(r.Base), true
}

// P99 of xs by nearest rank: with fewer than 100 samples it is the
// largest one.
func P99(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[int(math.Ceil(0.99*float64(len(s))))-1]
}

// Median of xs (mean of the middle two for even lengths).
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// MinMax of xs.
func MinMax(xs []float64) (float64, float64) {
	return slices.Min(xs), slices.Max(xs)
}

// Units. Values are stored in the unit named; format picks a readable
// scale.
const (
	UnitNs      = "ns"        // per packet
	UnitSeconds = "s"         // durations
	UnitBits    = "bit/s"     // throughput
	UnitBytes   = "B"         // memory
	UnitConns   = "conn/s"    // connection rate
	UnitEntries = "entries/s" // scan and insert rates
	UnitCount   = "count"     // things counted (datagrams lost, flows broken)
)

// format renders v in unit u with about three significant digits.
func format(v float64, u string) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	switch u {
	case UnitNs:
		return fmt.Sprintf("%s ns", sig(v))
	case UnitSeconds:
		switch {
		case v < 1e-3:
			return fmt.Sprintf("%s µs", sig(v*1e6))
		case v < 1:
			return fmt.Sprintf("%s ms", sig(v*1e3))
		}
		return fmt.Sprintf("%s s", sig(v))
	case UnitCount:
		return sig(v)
	case UnitBits:
		return fmt.Sprintf("%s Gbit/s", sig(v/1e9))
	case UnitBytes:
		switch {
		case v >= 1<<20:
			return fmt.Sprintf("%s MiB", sig(v/(1<<20)))
		case v >= 1<<10:
			return fmt.Sprintf("%s KiB", sig(v/(1<<10)))
		}
		return fmt.Sprintf("%s B", sig(v))
	}
	// Rates.
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%s M %s", sig(v/1e6), u)
	case v >= 1e4:
		return fmt.Sprintf("%s k %s", sig(v/1e3), u)
	}
	return fmt.Sprintf("%s %s", sig(v), u)
}

// sig prints three significant digits without an exponent.
func sig(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3g", v)
}
