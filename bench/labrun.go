package bench

import (
	"fmt"
	"time"
)

// labRun is one variant's lab and its samples.
type labRun struct {
	v          labVariant
	e          *labEnv
	conn       []float64 // conn/s
	tput1      []float64 // bit/s, one stream
	tput4      []float64 // bit/s, four streams
	bpfNs      []float64 // BPF ns per packet entering the node under iperf3 -P 1 (labbpf.go)
	bpfConn    []float64 // BPF seconds per connection under the connection-rate load
	cpuConn    []float64 // the machine's busy CPU seconds per connection, same samples
	connErrors int64
	firstErr   string
}

func labSuite(c *Context) (rows []Row, err error) {
	if err := EnsureTools(c); err != nil {
		return nil, err
	}
	var live []*labRun
	defer func() {
		for _, r := range live {
			if cerr := r.e.close(); cerr != nil {
				c.Logf("close lab of %q: %v", r.v.name, cerr)
			}
		}
	}()
	for _, v := range labVariants() {
		if v.key != "plain" && c.Variants != nil && !c.Variants.MatchString(v.key) {
			continue
		}
		start := time.Now()
		e, err := newLabEnvWith(c, v.opts)
		if err != nil {
			return nil, fmt.Errorf("lab for %s: %w", v.name, err)
		}
		r := &labRun{v: v, e: e}
		live = append(live, r)
		if err := v.setup(c, e, v.ahead); err != nil {
			return nil, fmt.Errorf("set up %s: %w", v.name, err)
		}
		// A short warm-up fills ARP and route caches and proves the path
		// works before anything is measured.
		if _, err := e.connRate(c, e.connAddr, time.Second, connWorkers); err != nil {
			return nil, fmt.Errorf("warm-up %s: %w", v.name, err)
		}
		c.Logf("lab %s ready in %v: %s", e.lab.ID, time.Since(start).Round(time.Millisecond), v.name)
	}
	// Let deferred kernel work of the setup (rule loads, namespace
	// creation) finish before the first sample.
	time.Sleep(2 * time.Second)
	for run := range c.LabRuns {
		// Each round starts one variant later, so a burst of noise from
		// the shared machine does not always hit the same neighbours.
		for i := range live {
			r := live[(i+run)%len(live)]
			res, err := r.e.connRate(c, r.e.connAddr, connDur, connWorkers)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", r.v.name, err)
			}
			rate := float64(res.Conns) / res.Seconds
			r.conn = append(r.conn, rate)
			r.connErrors += res.Errors
			if r.firstErr == "" {
				r.firstErr = res.FirstErr
			}
			c.Logf("lab run %d/%d %s: %.0f conn/s (%d errors)", run+1, c.LabRuns, r.v.name, rate, res.Errors)
			if !r.v.tput {
				continue
			}
			for _, s := range []struct {
				streams int
				out     *[]float64
			}{{1, &r.tput1}, {4, &r.tput4}} {
				bps, err := r.e.iperf(r.e.tputAddr, iperfSecs, s.streams)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", r.v.name, err)
				}
				*s.out = append(*s.out, bps)
				c.Logf("lab run %d/%d %s: iperf3 -P %d %.2f Gbit/s", run+1, c.LabRuns, r.v.name, s.streams, bps/1e9)
			}
		}
	}
	if err := bpfPhase(c, live); err != nil {
		return nil, fmt.Errorf("BPF time per packet: %w", err)
	}
	return labRows(live), nil
}

// labRows turns the samples into rows: every DNAT variant is compared with
// plain routing (the ceiling) measured in the same run.
func labRows(live []*labRun) []Row {
	byName := map[string]*labRun{}
	for _, r := range live {
		byName[r.v.name] = r
	}
	plain := live[0] // labVariants puts plain routing first
	connP := connParams()
	tputP := func(streams int) string {
		return fmt.Sprintf("iperf3 -P %d, %d s (+1 s omitted), to a 1-backend service", streams, iperfSecs)
	}
	byKey := map[string]*labRun{}
	for _, r := range live {
		byKey[r.v.key] = r
	}
	var rows []Row
	for _, v := range labVariants() {
		r := byName[v.name]
		if r == nil { // filtered out (--lab-variants)
			continue
		}
		conn := Row{Name: "new connections/s, " + v.name + ", " + connP, Unit: UnitConns, Samples: r.conn}
		if r.connErrors > 0 {
			conn.Note = fmt.Sprintf("%d failed connections over all runs (first: %s)", r.connErrors, r.firstErr)
		}
		if r != plain {
			conn.BaseName, conn.Base = "plain routing", plain.conn
			conn.Target = labWhy(v.connTarget, byKey, "new connections/s", r.conn, connOf)
			if conn.Target != nil {
				conn.Target.Why += bpfShare(r, byKey["bare"])
			}
		}
		rows = append(rows, conn)
		if !v.tput {
			continue
		}
		for _, t := range []struct {
			streams   int
			mine, ref []float64
			of        func(*labRun) []float64
		}{{1, r.tput1, plain.tput1, func(r *labRun) []float64 { return r.tput1 }}, {4, r.tput4, plain.tput4, func(r *labRun) []float64 { return r.tput4 }}} {
			row := Row{Name: "TCP throughput, " + v.name + ", " + tputP(t.streams), Unit: UnitBits, Samples: t.mine}
			if r != plain {
				row.BaseName, row.Base = "plain routing", t.ref
				row.Target = labWhy(v.tputTarget, byKey, fmt.Sprintf("iperf3 -P %d", t.streams), t.mine, t.of)
			}
			rows = append(rows, row)
		}
	}
	rows = append(rows, bpfRows(live, byKey)...)
	for _, cmp := range labComparisons() {
		r, base := byKey[cmp.key], byKey[cmp.base]
		if r == nil || base == nil {
			continue
		}
		row := Row{Name: cmp.name + ", " + connP, Unit: UnitConns, Samples: r.conn,
			BaseName: base.v.name, Base: base.conn, Target: cmp.target}
		if cmp.target != nil {
			if cmp.flat {
				row.Target = cmp.target.Because(whyFlat(r.conn, base.conn))
			} else {
				row.Target = cmp.target.Because(whyVsRules(rulesName(cmp.base), r.v.ahead,
					ratio(r.conn, plain.conn), ratio(base.conn, plain.conn), cmp.target.Value, nohop(byKey, plain),
					aaOf(byKey, connOf)))
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// connOf is a variant's connection-rate samples, for the notes that take a
// measure as a function.
func connOf(r *labRun) []float64 { return r.conn }

// bpfShare is the clause of a connection-rate explanation that sets r's
// BPF time per connection beside the CPU time a connection cost the
// machine and beside the bare forwarder's ("" where not measured).
func bpfShare(r, bare *labRun) string {
	if len(r.bpfConn) == 0 || len(r.cpuConn) == 0 {
		return ""
	}
	s := "; per connection " + connCost(r)
	if bare != nil && bare != r && len(bare.bpfConn) > 0 {
		s += fmt.Sprintf(", the bare forwarder's BPF %.1f µs", Median(bare.bpfConn)*1e6)
	}
	return s
}

// connCost is r's median BPF time per connection set against the CPU time
// a connection cost the machine, for the row's note and the misses' why.
func connCost(r *labRun) string {
	b, cpu := Median(r.bpfConn), Median(r.cpuConn)
	return fmt.Sprintf("the node's BPF ran %.1f µs of the %.0f µs of CPU a connection cost the machine (%.1f%%; /proc/stat)", b*1e6, cpu*1e6, 100*b/cpu)
}

// labWhy gives a target against plain routing the run's explanation: the
// variant's ratio beside the pipeline without a service and netfilter's
// DNAT with one service, all measured in this run.
func labWhy(t *Target, byKey map[string]*labRun, measure string, mine []float64, of func(*labRun) []float64) *Target {
	if t == nil {
		return nil
	}
	plain := byKey["plain"]
	rel := func(key string) float64 {
		r := byKey[key]
		if r == nil || plain == nil {
			return 0
		}
		return ratio(of(r), of(plain))
	}
	if plain == nil {
		return t
	}
	steps := vipSteps{vip: ratio(mine, of(plain)), bare: rel("bare"), direct: rel("hotpath-direct"), ceiling: rel("nohop"), aa: aaOf(byKey, of)}
	return t.Because(whyVsPlain(measure, steps, t.Value, []labRatio{
		{"iptables DNAT with 1 service", rel("iptables-1")},
		{"nftables DNAT with 1 service", rel("nft-1")},
		{"netfilter conntrack alone", rel("conntrack")},
		{"hotpath VIP with CT accounting off", rel("hotpath-noacct-1")},
	}))
}

// aaOf is the run's A/A band for the measure of: plain routing's second lab
// against its first (zero when the second was not run).
func aaOf(byKey map[string]*labRun, of func(*labRun) []float64) aaBand {
	again, plain := byKey["plain-again"], byKey["plain"]
	if again == nil || plain == nil {
		return aaBand{}
	}
	return aaBandOf(of(again), of(plain))
}

// nohop is the no-node variant's connection rate against plain routing's
// (0: not measured).
func nohop(byKey map[string]*labRun, plain *labRun) float64 {
	r := byKey["nohop"]
	if r == nil {
		return 0
	}
	return ratio(r.conn, plain.conn)
}

// rulesName is the netfilter variant a comparison's base key names.
func rulesName(key string) string {
	if len(key) >= 3 && key[:3] == "nft" {
		return "nftables DNAT"
	}
	return "iptables DNAT"
}

// bpfRows are the BPF time per packet of every variant that runs programs
// (hotpath's and the bare forwarder), each against the variant it differs
// from by one thing: the pipeline without a service for the VIP variants
// and the bare forwarder, the default VIP variant for a switch of the
// plugins' (labVariant.bpfBase).
func bpfRows(live []*labRun, byKey map[string]*labRun) []Row {
	p := fmt.Sprintf("iperf3 -P 1, %d s: the entry programs' run time at both hooks over the packets entering the node (tail-called stages included; kernel BPF stats)", iperfSecs)
	var rows []Row
	for _, r := range live {
		if len(r.bpfNs) == 0 {
			continue
		}
		row := Row{Name: "BPF time per packet, " + r.v.name + ", " + p, Unit: UnitNs, Samples: r.bpfNs}
		baseKey := r.v.bpfBase
		if baseKey == "" {
			baseKey = "hotpath-direct"
		}
		if b := byKey[baseKey]; b != nil && b != r && len(b.bpfNs) > 0 {
			row.BaseName, row.Base = b.v.name, b.bpfNs
		}
		rows = append(rows, row)
	}
	return append(rows, bpfConnRows(live, byKey)...)
}

// bpfConnRows set each variant's BPF time per connection against the bare
// forwarder's, with the share of the connection's whole CPU cost it is.
func bpfConnRows(live []*labRun, byKey map[string]*labRun) []Row {
	p := connParams() + ": the node's entry programs at both hooks and the cgroup's socket programs, per connection (kernel BPF stats)"
	bare := byKey["bare"]
	var rows []Row
	for _, r := range live {
		if len(r.bpfConn) == 0 {
			continue
		}
		row := Row{Name: "BPF time per connection, " + r.v.name + ", " + p, Unit: UnitSeconds, Samples: r.bpfConn,
			Note: "median: " + connCost(r)}
		if bare != nil && bare != r && len(bare.bpfConn) > 0 {
			row.BaseName, row.Base = bare.v.name, bare.bpfConn
		}
		rows = append(rows, row)
	}
	return rows
}
