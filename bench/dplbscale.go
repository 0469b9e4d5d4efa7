package bench

import (
	"fmt"
	"time"

	"github.com/hotpath/hotpath/core/abi"
)

// scaleRuns caps the scale rows' runs: the lb plugin never hands out a
// service id twice and ids are 16 bits, so the fillers of every run must
// fit 65535 together.
const scaleRuns = 5

// maglevFillers is the Maglev step of the scale rows: that many filler
// services with the default table (M=16381) each, three backends. It runs
// in the first maglevScaleRuns runs only: with one inner map per table
// every add and delete waits for an RCU grace period (~11 ms each).
const (
	maglevFillers   = 1000
	maglevScaleRuns = 3
)

// scaleRows measures the whole pipeline's new flows with the 4 services of
// the rows above, then with 1000 and 10000 random filler services added
// (service-apply, three backends each), deletes them and measures again
// with 1000 Maglev fillers: one run each, so the steps are paired in time.
// Flat is the target: a service lookup is one hash lookup whatever the
// count, and a Maglev table is only read for its own service.
func (d *lbDP) scaleRows(c *Context, p lbPackets) ([]Row, error) {
	steps := []struct {
		n   int
		alg string
	}{{0, ""}, {1000, "random"}, {10000, "random"}, {maglevFillers, "maglev"}}
	samples := make([][]float64, len(steps))
	runs := min(c.Runs, scaleRuns)
	for run := range runs {
		have, alg := 0, ""
		for k, st := range steps {
			if st.alg == "maglev" && run >= maglevScaleRuns {
				continue
			}
			if st.alg != alg && have > 0 {
				if err := d.delFillers(have); err != nil {
					return nil, err
				}
				have = 0
			}
			if st.n > have {
				start := time.Now()
				if err := d.addFillers(have, st.n, st.alg); err != nil {
					return nil, err
				}
				c.Logf("datapath lb scale run %d/%d: %d %s filler services added in %v", run+1, runs, st.n-have, st.alg, time.Since(start).Round(time.Millisecond))
				have, alg = st.n, st.alg
			}
			m, err := d.scalePass(p)
			if err != nil {
				return nil, fmt.Errorf("whole pipeline, new flows, %d %s fillers: %w", st.n, st.alg, err)
			}
			samples[k] = append(samples[k], m)
		}
		if err := d.delFillers(have); err != nil {
			return nil, err
		}
	}
	var rows []Row
	for k, st := range steps[1:] {
		more, fewer := samples[k+1], samples[0]
		rows = append(rows, Row{
			Name: fmt.Sprintf("scale: whole pipeline, NEW TCP flow to a VIP, %d %s filler services in the lb maps (+ the 4 above), SYN of %d tuples, Repeat=1 method; %d runs",
				st.n, fillerKind(st.alg), dpFlows, len(more)),
			Unit: UnitNs, Samples: more, BaseName: "same run, before the fillers were added (4 services)", Base: fewer,
			Target: RatioBelow(1.05).Because(whyFlat(more, fewer)),
		})
	}
	return rows, nil
}

func fillerKind(alg string) string {
	if alg == "maglev" {
		return "Maglev (M=16381, 3 backends)"
	}
	return alg
}

// scalePass is one new-flow pass of the whole pipeline on an emptied CT map.
func (d *lbDP) scalePass(p lbPackets) (float64, error) {
	if err := clearMap(d.h.maps.ByName[abi.MapCT4]); err != nil {
		return 0, err
	}
	return meanFirst(d.pipeline(d.genFull, true), p.syns)
}
