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

// scaleRows measures the whole pipeline's new flows with the 4 services of
// the rows above, then with 1000 and 10000 filler services added
// (service-apply, random, three backends each), and deletes the fillers
// again: one run each, so the three are paired in time.
func (d *lbDP) scaleRows(c *Context, p lbPackets) ([]Row, error) {
	ct4 := d.h.maps.ByName[abi.MapCT4]
	counts := []int{0, 1000, 10000}
	samples := make([][]float64, len(counts))
	runs := min(c.Runs, scaleRuns)
	for run := range runs {
		have := 0
		for k, n := range counts {
			if n > have {
				start := time.Now()
				if err := d.addFillers(have, n); err != nil {
					return nil, err
				}
				c.Logf("datapath lb scale run %d/%d: %d filler services added in %v", run+1, runs, n-have, time.Since(start).Round(time.Millisecond))
				have = n
			}
			if err := clearMap(ct4); err != nil {
				return nil, err
			}
			m, err := meanFirst(d.pipeline(d.genFull, true), p.syns)
			if err != nil {
				return nil, fmt.Errorf("whole pipeline, new flows, %d fillers: %w", n, err)
			}
			samples[k] = append(samples[k], m)
		}
		if err := d.delFillers(have); err != nil {
			return nil, err
		}
	}
	var rows []Row
	for k, n := range counts[1:] {
		rows = append(rows, Row{
			Name: fmt.Sprintf("scale: whole pipeline, NEW TCP flow to a VIP, %d filler services in the lb maps (+ the 4 above), SYN of %d tuples, Repeat=1 method; %d runs", n, dpFlows, runs),
			Unit: UnitNs, Samples: samples[k+1], BaseName: "same run, before the fillers were added (4 services)", Base: samples[0],
		})
	}
	return rows, nil
}
