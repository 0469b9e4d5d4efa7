package bench

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The why-notes quote the run's own numbers: different rows give different
// notes, and the figures in a note are the medians and spreads passed in.
func TestWhyPipelineGapQuotesTheRun(t *testing.T) {
	pipe, mono, hop := []float64{200, 210, 205}, []float64{150, 152, 151}, []float64{14, 16, 15}
	got := whyPipelineGap(pipe, mono, 3, hop)
	for _, want := range []string{"205 ns", "151 ns", "54.0 ns more", "3 tail calls", "15.0 ns", "hops explain 45.0 ns",
		"the other 9.00 ns is within the rows' spreads (12.0 ns together)"} {
		if !strings.Contains(got, want) {
			t.Errorf("note %q lacks %q", got, want)
		}
	}
	// Same gap, cheaper hops: the rest is now beyond the spread.
	got = whyPipelineGap(pipe, mono, 3, []float64{5, 5, 5})
	if !strings.Contains(got, "39.0 ns is left beyond the rows' spreads") {
		t.Errorf("note %q does not say what the hops leave unexplained", got)
	}
	if got := whyPipelineGap(pipe, mono, 4, hop); !strings.Contains(got, "all of the gap") {
		t.Errorf("4 hops × 15 ns cover a 54 ns gap, note says %q", got)
	}
	if got := whyPipelineGap(nil, mono, 3, hop); got != "no samples" {
		t.Errorf("without samples: %q", got)
	}
}

func TestWhyLabNotesQuoteTheRun(t *testing.T) {
	got := whyVsPlain("new connections/s", vipSteps{vip: 0.9, direct: 0.95}, 1.0, []labRatio{{"iptables DNAT with 1 service", 0.86}, {"nothing", 0}})
	for _, want := range []string{"0.90× plain routing", "alone without any service 0.95×", "stages cost 5% against plain routing", "translation +5%", "iptables DNAT with 1 service 0.86×"} {
		if !strings.Contains(got, want) {
			t.Errorf("note %q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "nothing") {
		t.Errorf("a variant without samples is quoted: %q", got)
	}
	got = whyVsPlain("new connections/s", vipSteps{vip: 1.05, direct: 1.04, ceiling: 1.10}, 1.2, nil)
	for _, want := range []string{"no node at all the endpoints reached 1.10×", "took 50% of that gain", "target's 1.20× lies above it"} {
		if !strings.Contains(got, want) {
			t.Errorf("note %q lacks %q", got, want)
		}
	}
	got = whyVsPlain("iperf3 -P 1", vipSteps{vip: 0.9, bare: 1.2, direct: 1.08, ceiling: 1.5}, 1.0, nil)
	for _, want := range []string{"bare TCX forwarder (one lookup, bpf_redirect_peer) reached 1.20×", "stages cost 10% against the bare forwarder", "translation +17%"} {
		if !strings.Contains(got, want) {
			t.Errorf("note %q lacks %q", got, want)
		}
	}
	if got := whyVsRules("iptables DNAT", 1000, 1.1, 0.9, 1.3, 1.15, aaBand{}); !strings.Contains(got, "would need hotpath at 1.17× plain routing, where no node at all reached 1.15×: out of reach") {
		t.Errorf("rules note above the ceiling: %q", got)
	}
	got = whyVsRules("nftables DNAT", 1000, 0.9, 0.85, 1.1, 0, aaBand{})
	for _, want := range []string{"1000 services", "0.90× plain", "nftables DNAT 0.85×", "ratio of 1.06×", "1.10× would need hotpath at 0.94× plain"} {
		if !strings.Contains(got, want) {
			t.Errorf("note %q lacks %q", got, want)
		}
	}
	if got := whyFlat([]float64{110, 112, 111}, []float64{100, 101, 99}); !strings.Contains(got, "+11.0%") || !strings.Contains(got, "beyond") {
		t.Errorf("flat note %q", got)
	}
	if got := whyFlat([]float64{100}, []float64{95, 99, 105}); !strings.Contains(got, "within") {
		t.Errorf("flat note within the spread: %q", got)
	}
}

// The A/A band pairs the two plain-routing labs round by round and says
// whether a ratio's distance from its target is inside it.
func TestWhyAABand(t *testing.T) {
	b := aaBandOf([]float64{90, 110, 100, 105}, []float64{100, 100, 100, 100})
	if b.lo != 0.9 || b.hi != 1.1 {
		t.Fatalf("band %+v, want 0.90..1.10 round by round", b)
	}
	got := whyVsPlain("new connections/s", vipSteps{vip: 1.0, aa: b}, 1.1, nil)
	for _, want := range []string{"A/A", "0.90..1.10× round by round (±10%)", "the 9% between this ratio and the target is within what this run resolves"} {
		if !strings.Contains(got, want) {
			t.Errorf("note %q lacks %q", got, want)
		}
	}
	narrow := aaBandOf([]float64{99, 101, 100}, []float64{100, 100, 100})
	if got := narrow.note(0.8, 1.1); !strings.Contains(got, "the 27% between this ratio and the target is beyond it") {
		t.Errorf("a miss beyond a narrow band: %q", got)
	}
	if got := whyVsRules("iptables DNAT", 1000, 1.2, 1.0, 1.3, 0, narrow); !strings.Contains(got, "beyond it") {
		t.Errorf("rules note without the band: %q", got)
	}
	if (aaBandOf(nil, []float64{1})) != (aaBand{}) || (aaBand{}).note(1, 1.1) != "" {
		t.Error("an A/A pair not measured must say nothing")
	}
}

// A missed target prints the computed note; a met one prints nothing.
func TestReportPrintsComputedWhyOnlyOnMiss(t *testing.T) {
	mk := func(pipe []float64) Row {
		mono := []float64{150, 151, 152}
		return Row{Suite: "datapath", Name: "whole", Unit: UnitNs, Samples: pipe, BaseName: "mono", Base: mono,
			Target: RatioBelow(1.10).Because(whyPipelineGap(pipe, mono, 2, []float64{10, 10, 10}))}
	}
	var miss, met bytes.Buffer
	Report(&miss, Env{}, []Outcome{{Suite: Suite{Name: "datapath"}, Rows: []Row{mk([]float64{200, 201, 202})}}}, 3, 3, time.Second)
	if !strings.Contains(miss.String(), "MISSED TARGET") || !strings.Contains(miss.String(), "201 ns, the same bodies in one program 151 ns") {
		t.Errorf("miss without its computed why:\n%s", miss.String())
	}
	Report(&met, Env{}, []Outcome{{Suite: Suite{Name: "datapath"}, Rows: []Row{mk([]float64{160, 161, 162})}}}, 3, 3, time.Second)
	if strings.Contains(met.String(), "MISSED") || strings.Contains(met.String(), "Why:") {
		t.Errorf("a met target printed a why:\n%s", met.String())
	}
}

// iptables and nftables are compared with hotpath at every service count,
// and the socket-LB and redirects-off variants are measured beside them.
func TestLabVariantsAndComparisons(t *testing.T) {
	for _, n := range labCounts {
		for _, rules := range []string{"iptables", "nft"} {
			found := false
			for _, c := range labComparisons() {
				found = found || (c.key == fmt.Sprintf("hotpath-%d", n) && c.base == fmt.Sprintf("%s-%d", rules, n))
			}
			if !found {
				t.Errorf("no hotpath vs %s comparison at %d services", rules, n)
			}
		}
	}
	keys := map[string]bool{}
	for _, v := range labVariants() {
		keys[v.key] = true
	}
	for _, k := range []string{"hotpath-1", "hotpath-socklb-1", "hotpath-noredirect-1", "nohop", "bare", "plain-again"} {
		if !keys[k] {
			t.Errorf("no lab variant %s", k)
		}
	}
}
