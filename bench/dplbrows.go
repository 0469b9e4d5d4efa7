package bench

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
)

// lbSamples are the per-run values (ns) of the lb datapath rows.
type lbSamples struct {
	// New flows, Repeat=1 method: the SYNs of dpFlows tuples to lbNewVIP
	// through each generation and the monolithic program; the second
	// packets (ACK) through the whole pipeline and the monolithic program.
	ctNew, lbNew, selNew, noRevNew, fullNew, monoNew []float64
	fullAck, monoAck                                 []float64
	fullP50, fullP99, monoP50, monoP99               []float64
	// Established, Repeat=dpRepeat: the ping-pong packet; the reply.
	ctEst, lbEst, noRevEst, fullEst, monoEst []float64
	noRevReply, fullReply, monoReply         []float64
	// One pass-through hop: a packet to no service through ct alone and
	// through lb-select + ct.
	ctPass, hopPass []float64
	// Tail calls counted in the packet's context, last run.
	hops lbHops
}

// lbHops are the tail calls one packet of each kind made through the whole
// pipeline, read back from its context.
type lbHops struct{ est, reply, syn, pass int }

// lbPipelineRows measures the whole lb + ct pipeline against the
// monolithic program that runs the same stage bodies without tail calls
// (bpf/mono.c), and each lb stage as the difference between generations
// with and without it.
func lbPipelineRows(c *Context, h *dpHarness, ctProg *ebpf.Program, genCT uint32) ([]Row, error) {
	d, err := newLBDP(h, ctProg, genCT)
	if err != nil {
		return nil, err
	}
	defer d.close()
	p := newLBPackets()
	var s lbSamples
	for run := range c.Runs {
		c.Logf("datapath lb run %d/%d", run+1, c.Runs)
		if err := d.newFlows(&s, p, run%2 == 1); err != nil {
			return nil, err
		}
		if err := d.established(&s, p, run%2 == 1); err != nil {
			return nil, err
		}
	}
	rows := lbRows(&s)
	scale, err := d.scaleRows(c, p)
	return append(rows, scale...), err
}

// newFlows is one run of the new-flow passes, each on an emptied CT map.
// Odd runs go in reverse order, so that drift during a run does not always
// favour the same side of a comparison.
func (d *lbDP) newFlows(s *lbSamples, p lbPackets, reverse bool) error {
	ct4 := d.h.maps.ByName[abi.MapCT4]
	// Each SYN to the VIP leaves two entries in the whole pipeline: the
	// service entry (its backend) and the flow's own, translated.
	type pass struct {
		name    string
		run     runner
		out     *[]float64
		entries int // per flow, checked afterwards; 0: not checked
	}
	passes := []pass{
		{"entry + ct", d.pipeline(d.genCT, true), &s.ctNew, 1},
		{"entry + lb + ct", d.pipeline(d.genLB, true), &s.lbNew, 1},
		{"entry + lb + lb-select + ct", d.pipeline(d.genSel, true), &s.selNew, 1},
		{"all but lb-revnat", d.pipeline(d.genNoRev, true), &s.noRevNew, 2},
		{"whole pipeline", d.pipeline(d.genFull, true), &s.fullNew, 2},
		{"monolithic", on(d.mono.Ingress), &s.monoNew, 2},
	}
	if reverse {
		for i, j := 0, len(passes)-1; i < j; i, j = i+1, j-1 {
			passes[i], passes[j] = passes[j], passes[i]
		}
	}
	seen := 0 // SYN passes of the whole pipeline and the monolithic program
	for _, ps := range passes {
		if err := clearMap(ct4); err != nil {
			return err
		}
		st, err := firstPass(ps.run, p.syns)
		if err != nil {
			return fmt.Errorf("%s, new flows to a VIP: %w", ps.name, err)
		}
		*ps.out = append(*ps.out, st.mean)
		if n, err := countEntries(ct4); err != nil || n != ps.entries*len(p.syns) {
			return fmt.Errorf("%s: after %d new flows to a VIP the CT map holds %d entries, want %d (%v)",
				ps.name, len(p.syns), n, ps.entries*len(p.syns), err)
		}
		switch ps.out {
		case &s.fullNew:
			s.fullP50, s.fullP99 = append(s.fullP50, st.p50), append(s.fullP99, st.p99)
		case &s.monoNew:
			s.monoP50, s.monoP99 = append(s.monoP50, st.p50), append(s.monoP99, st.p99)
		default:
			continue
		}
		if seen++; seen == 2 {
			if err := d.secondPackets(s, p, reverse); err != nil {
				return err
			}
		}
	}
	return nil
}

// secondPackets runs the second packets (ACK) of the new flows through the
// whole pipeline and the monolithic program, back to back on the entries the
// later of their two SYN passes left (both leave the same two per flow,
// checked), the order alternating by run. Run each after its own SYN pass,
// minutes of drift apart on a busy VM, the ratio swung by ±20%.
func (d *lbDP) secondPackets(s *lbSamples, p lbPackets, reverse bool) error {
	acks := []dpStep{
		{"whole pipeline", d.pipeline(d.genFull, true), nil, &s.fullAck},
		{"monolithic", on(d.mono.Ingress), nil, &s.monoAck},
	}
	if reverse {
		acks[0], acks[1] = acks[1], acks[0]
	}
	for _, a := range acks {
		m, err := meanFirst(a.run, p.acks)
		if err != nil {
			return fmt.Errorf("%s, second packets: %w", a.name, err)
		}
		*a.out = append(*a.out, m)
	}
	return nil
}

// established is one run of the Repeat rows. The lb-only generation needs
// the service entries that a generation with lb-dnat creates (lb alone
// never records a choice), so the whole pipeline or the monolithic program
// always runs before it.
func (d *lbDP) established(s *lbSamples, p lbPackets, reverse bool) error {
	// The whole pipeline and the monolithic program warm up first: the
	// lb-only generation needs the service entries they create.
	steps := []dpStep{
		{"whole pipeline", d.pipeline(d.genFull, true), p.est, &s.fullEst},
		{"monolithic", on(d.mono.Ingress), p.est, &s.monoEst},
		{"all but lb-revnat", d.pipeline(d.genNoRev, true), p.est, &s.noRevEst},
		{"entry + lb + ct", d.pipeline(d.genLB, true), p.est, &s.lbEst},
		{"entry + ct", d.pipeline(d.genCT, true), p.est, &s.ctEst},
	}
	if reverse {
		steps[0], steps[1] = steps[1], steps[0]
	}
	if err := interleaved(steps); err != nil {
		return fmt.Errorf("established flow to a VIP: %w", err)
	}
	// The ping-pong flows above left the entries the replies match (their
	// rev_nat_index: the other VIP). The reply must come out rewritten.
	d.h.use(d.genFull)
	if err := checkRevNAT(d.h.entry.Egress, p.reply, lbPingVIP); err != nil {
		return fmt.Errorf("whole pipeline: %w", err)
	}
	if err := checkRevNAT(d.mono.Egress, p.reply, lbPingVIP); err != nil {
		return fmt.Errorf("monolithic: %w", err)
	}
	replies := []dpStep{
		{"whole pipeline", d.pipeline(d.genFull, false), p.reply, &s.fullReply},
		{"monolithic", on(d.mono.Egress), p.reply, &s.monoReply},
		{"all but lb-revnat", d.pipeline(d.genNoRev, false), p.reply, &s.noRevReply},
	}
	pass := []dpStep{
		{"entry + ct, no service", d.pipeline(d.genCT, true), p.pass, &s.ctPass},
		{"entry + lb-select + ct, no service", d.pipeline(d.genHop, true), p.pass, &s.hopPass},
	}
	if reverse {
		replies[0], replies[2] = replies[2], replies[0]
		pass[0], pass[1] = pass[1], pass[0]
	}
	if err := interleaved(replies); err != nil {
		return fmt.Errorf("reply with reverse NAT: %w", err)
	}
	if err := interleaved(pass); err != nil {
		return fmt.Errorf("packet to no service: %w", err)
	}
	return d.countHops(&s.hops, p)
}

// countHops reads back how many tail calls each kind of packet made
// through the whole pipeline.
func (d *lbDP) countHops(h *lbHops, p lbPackets) error {
	var err error
	if h.est, err = d.hops(d.genFull, true, p.est); err != nil {
		return err
	}
	if h.reply, err = d.hops(d.genFull, false, p.reply); err != nil {
		return err
	}
	if h.pass, err = d.hops(d.genFull, true, p.pass); err != nil {
		return err
	}
	// A SYN of a new flow: the first of the new-flow tuples, whose entries
	// are gone (the new-flow pass empties ct4 first).
	if err := clearMap(d.h.maps.ByName[abi.MapCT4]); err != nil {
		return err
	}
	h.syn, err = d.hops(d.genFull, true, p.syns[0])
	return err
}

func lbRows(s *lbSamples) []Row {
	pipe := "whole pipeline (entry + lb + lb-select + lb-dnat + ct + lb-revnat, one generation)"
	flows := fmt.Sprintf("%d distinct tuples, Repeat=1 each, kernel-timed, mean", dpFlows)
	rep := fmt.Sprintf("Repeat=%d", dpRepeat)
	mono := "monolithic (bpf/mono.c: same bodies, one program, no tail calls)"
	paired := "paired per run"
	hop := diff(s.hopPass, s.ctPass)
	gap := func(pipe, mono []float64, hops int) string { return whyPipelineGap(pipe, mono, hops, hop) }
	return []Row{
		{Name: pipe + ", NEW TCP flow to a VIP (3 backends, maglev M=16381; lb chooses and translates it itself, passing over lb-select and lb-dnat; the per-stage rows below load the stages split): SYN of " + flows + ", CT map emptied before each run",
			Unit: UnitNs, Samples: s.fullNew, BaseName: mono + ", same packets", Base: s.monoNew,
			Target: RatioBelow(1.05).Because(gap(s.fullNew, s.monoNew, s.hops.syn)),
			Note: fmt.Sprintf("per packet, median over runs: p50 %.0f ns, p99 %.0f ns (monolithic: p50 %.0f ns, p99 %.0f ns); %d tail calls per SYN",
				Median(s.fullP50), Median(s.fullP99), Median(s.monoP50), Median(s.monoP99), s.hops.syn)},
		{Name: pipe + ", established flow to a VIP: second packet (ACK) of the same " + flows,
			Unit: UnitNs, Samples: s.fullAck, BaseName: mono + ", same packets", Base: s.monoAck,
			Target: RatioBelow(1.05).Because(gap(s.fullAck, s.monoAck, s.hops.est))},
		{Name: pipe + ", established flow to a VIP, 64 B TCP, " + rep + " (two VIPs that translate into each other, so every round is a real DNAT)",
			Unit: UnitNs, Samples: s.fullEst, BaseName: mono + ", same packet", Base: s.monoEst,
			Target: RatioBelow(1.10).Because(gap(s.fullEst, s.monoEst, s.hops.est)),
			Note:   fmt.Sprintf("%d tail calls per packet (counted in its context)", s.hops.est)},
		{Name: pipe + ", reply (egress) with reverse NAT to the VIP, " + rep + " (the same pair: every round rewrites the source to the other VIP, checked)",
			Unit: UnitNs, Samples: s.fullReply, BaseName: mono + ", same packet", Base: s.monoReply,
			Target: RatioBelow(1.10).Because(gap(s.fullReply, s.monoReply, s.hops.reply)),
			Note:   fmt.Sprintf("%d tail calls per packet (counted in its context)", s.hops.reply)},
		{Name: "one pass-through hop (lb-select with nothing to do: tail call, stage entry, context lookup) = (entry + lb-select + ct) − (entry + ct), packet to no service, " + rep + ", " + paired,
			Unit: UnitNs, Samples: hop,
			Note: fmt.Sprintf("a packet to no service makes %d tail calls through the whole pipeline", s.hops.pass)},
		{Name: "lb stage alone, established (service + service-entry + backend lookups, DNAT rewrite + checksums) = (entry + lb + ct) − (entry + ct), " + rep + ", " + paired,
			Unit: UnitNs, Samples: diff(s.lbEst, s.ctEst)},
		{Name: "lb-select + lb-dnat, established (nothing left to do: lb translated the flow and jumped past them, no tail call) = (all but lb-revnat) − (lb + ct), " + rep + ", " + paired,
			Unit: UnitNs, Samples: diff(s.noRevEst, s.lbEst)},
		{Name: "lb-revnat stage, not a reply (skipped: lb marks it for packets to a service) = whole − (all but lb-revnat), " + rep + ", " + paired,
			Unit: UnitNs, Samples: diff(s.fullEst, s.noRevEst)},
		{Name: "lb-revnat stage, reply with reverse NAT = whole − (all but lb-revnat), egress, " + rep + ", " + paired,
			Unit: UnitNs, Samples: diff(s.fullReply, s.noRevReply)},
		{Name: "lb stage alone, NEW flow (service found, no service entry yet) = (entry + lb + ct) − (entry + ct), SYNs, Repeat=1 method, " + paired,
			Unit: UnitNs, Samples: diff(s.lbNew, s.ctNew)},
		{Name: "lb-select stage alone, NEW flow (maglev: tuple hash + table lookup) = (lb + lb-select + ct) − (lb + ct), SYNs, Repeat=1 method, " + paired,
			Unit: UnitNs, Samples: diff(s.selNew, s.lbNew)},
		{Name: "lb-dnat stage alone, NEW flow (creates the service entry, rewrites) = (all but lb-revnat) − (lb + lb-select + ct), SYNs, Repeat=1 method, " + paired,
			Unit: UnitNs, Samples: diff(s.noRevNew, s.selNew),
			Note: "stage differences also carry what the stage changes downstream: without lb-dnat the ct stage tracks the VIP tuple instead of the backend's, and without lb-dnat a new flow leaves one CT entry instead of two"},
	}
}
