package bench

import (
	"fmt"
	"math"
	"strings"
)

// Why a target is missed, printed under the table with the miss. Every
// explanation is computed from rows of the same run: a figure quoted here is
// a median (or spread) the run measured, never a remembered one.

// whyPipelineGap explains a staged pipeline row against the monolithic
// program on the same packets: how much of the gap the packet's tail calls
// (counted in its context) account for at the cost of one pass-through hop
// measured in the run, and whether the rest is within the rows' own spread.
func whyPipelineGap(pipe, mono []float64, hops int, hop []float64) string {
	if len(pipe) == 0 || len(mono) == 0 {
		return "no samples"
	}
	p, m := Median(pipe), Median(mono)
	gap := p - m
	var b strings.Builder
	fmt.Fprintf(&b, "the staged pipeline took %s, the same bodies in one program %s: %s more per packet; ",
		format(p, UnitNs), format(m, UnitNs), format(gap, UnitNs))
	if len(hop) == 0 {
		fmt.Fprintf(&b, "the packet made %d tail calls (no hop cost measured)", hops)
		return b.String()
	}
	h := Median(hop)
	fmt.Fprintf(&b, "the packet made %d tail calls and one pass-through hop cost %s in this run, so hops explain %s",
		hops, format(h, UnitNs), format(float64(hops)*h, UnitNs))
	rest := gap - float64(hops)*h
	noise := spread(pipe) + spread(mono)
	switch {
	case rest <= 0:
		b.WriteString(", all of the gap")
	case rest <= noise:
		fmt.Fprintf(&b, "; the other %s is within the rows' spreads (%s together)", format(rest, UnitNs), format(noise, UnitNs))
	default:
		fmt.Fprintf(&b, "; %s is left beyond the rows' spreads (%s together): per-program code and data the hot loop keeps out of the caches",
			format(rest, UnitNs), format(noise, UnitNs))
	}
	return b.String()
}

// spread is max − min of xs.
func spread(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	lo, hi := MinMax(xs)
	return hi - lo
}

// ratio is median(a) / median(b), or 0 without samples.
func ratio(a, b []float64) float64 {
	if len(a) == 0 || len(b) == 0 || Median(b) == 0 {
		return 0
	}
	return Median(a) / Median(b)
}

// labRatio is one lab comparison a why-note quotes: a variant's median
// against plain routing's, both of this run.
type labRatio struct {
	what  string
	ratio float64
}

// vipSteps are a VIP row's ratio to plain routing and the variants between
// plain routing and it, all of one run (0: not measured): the bare TCX
// forwarder (the hook and the redirect alone), the pipeline without a
// service (hotpath's stages, nothing translated) and the no-node ceiling.
type vipSteps struct {
	vip, bare, direct, ceiling float64
	aa                         aaBand
}

// aaBand is how far two identical labs came apart in one run: the A/A
// variant's median against plain routing's, and its ratio round by round
// (each round measures both). Zero: not measured.
type aaBand struct {
	med, lo, hi float64
}

// aaBandOf pairs again's samples with plain's round by round.
func aaBandOf(again, plain []float64) aaBand {
	n := min(len(again), len(plain))
	rs := make([]float64, 0, n)
	for i := range n {
		if plain[i] > 0 {
			rs = append(rs, again[i]/plain[i])
		}
	}
	if len(rs) == 0 {
		return aaBand{}
	}
	lo, hi := MinMax(rs)
	return aaBand{med: ratio(again, plain), lo: lo, hi: hi}
}

// note sets the distance between a ratio and its target beside the A/A
// pair's: when identical labs come apart by more than that distance, the
// run cannot tell the ratio from the target.
func (b aaBand) note(got, target float64) string {
	if b.med == 0 || got <= 0 || target <= 0 {
		return ""
	}
	half := (b.hi - b.lo) / 2
	miss := math.Abs(target-got) / target
	s := fmt.Sprintf("; two identical plain-routing labs (A/A) came out %.2f× of each other, %.2f..%.2f× round by round (±%.0f%%)",
		b.med, b.lo, b.hi, 100*half)
	if miss <= max(half, math.Abs(b.med-1)) {
		return s + fmt.Sprintf(": the %.0f%% between this ratio and the target is within what this run resolves", 100*miss)
	}
	return s + fmt.Sprintf(": the %.0f%% between this ratio and the target is beyond it", 100*miss)
}

// whyVsPlain explains a VIP row's ratio to plain routing step by step:
// what the hook and the redirect give (the bare forwarder), what the
// stages take of it (the pipeline without a service, against the bare
// forwarder or, without it, plain routing), what translation takes, and
// the ceiling no node datapath can exceed; target is the row's goal.
// others are further variants of the run quoted as they are.
func whyVsPlain(measure string, s vipSteps, target float64, others []labRatio) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: plain routing runs no program; through the VIP hotpath reached %.2f× plain routing", measure, s.vip)
	base, baseName := 1.0, "plain routing"
	if s.bare > 0 {
		fmt.Fprintf(&b, "; a bare TCX forwarder (one lookup, bpf_redirect_peer) reached %.2f×, what the hook and the redirect give", s.bare)
		base, baseName = s.bare, "the bare forwarder"
	}
	if s.direct > 0 {
		fmt.Fprintf(&b, "; the pipeline alone without any service %.2f×, so its stages cost %.0f%% against %s, and translation %+.0f%%",
			s.direct, 100*(1-s.direct/base), baseName, 100*(s.direct-s.vip)/s.direct)
	}
	b.WriteString(ceilingNote(s.vip, s.ceiling, target))
	b.WriteString(s.aa.note(s.vip, target))
	for _, o := range others {
		if o.ratio > 0 {
			fmt.Fprintf(&b, "; %s %.2f×", o.what, o.ratio)
		}
	}
	return b.String()
}

// ceilingNote sets a ratio to plain routing beside the no-node variant's:
// the share of its gain hotpath took, and whether the target lies beyond it.
func ceilingNote(got, ceiling, target float64) string {
	if ceiling <= 0 {
		return ""
	}
	s := fmt.Sprintf("; with no node at all the endpoints reached %.2f×, the most any node datapath can reach on this machine", ceiling)
	if ceiling > 1 {
		s += fmt.Sprintf(", and hotpath took %.0f%% of that gain", 100*(got-1)/(ceiling-1))
	}
	if target > ceiling {
		s += fmt.Sprintf("; the target's %.2f× lies above it, out of reach of any node datapath here", target)
	}
	return s
}

// whyVsRules explains a ratio target against iptables or nftables at n
// services: both are ratios to plain routing of this run, so the ratio
// between them and what hotpath would need to meet the target follow, set
// beside the no-node ceiling (0: not measured).
func whyVsRules(rules string, n int, hp, base, target, ceiling float64, aa aaBand) string {
	if hp <= 0 || base <= 0 {
		return "a variant has no samples"
	}
	s := fmt.Sprintf("with %s ahead hotpath reached %.2f× plain routing and %s %.2f×, a ratio of %.2f×; "+
		"%.2f× would need hotpath at %.2f× plain routing", serviceCount(n), hp, rules, base, hp/base, target, target*base)
	if ceiling > 0 {
		s += fmt.Sprintf(", where no node at all reached %.2f×", ceiling)
		if target*base > ceiling {
			s += ": out of reach of any node datapath on this machine"
		}
	}
	return s + aa.note(hp/base, target)
}

// whyFlat explains a scale row that is not flat: the change against the
// smaller service count, next to the baseline's own run-to-run spread.
func whyFlat(more, fewer []float64) string {
	if len(more) == 0 || len(fewer) == 0 {
		return "no samples"
	}
	m, f := Median(more), Median(fewer)
	lo, hi := MinMax(fewer)
	verdict := "beyond"
	if m >= lo && m <= hi {
		verdict = "within"
	}
	return fmt.Sprintf("median %.4g vs %.4g (%+.1f%%), %s the baseline's own spread over the runs (%.4g..%.4g)",
		m, f, 100*(m-f)/f, verdict, lo, hi)
}
