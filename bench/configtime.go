package bench

import (
	"fmt"
	"time"
)

// configRuns is fixed: the lb plugin never hands out a service id twice
// (CT entries may still name a deleted one) and ids are 16 bits, so the
// services of every run must fit 65535 together.
const configRuns = 3

// configRows times bulk configuration through the real path (CLI → control
// API → supervisor → lb plugin → maps) on the upgrade suite's supervisor:
// `hotpath lb service apply` of 1, 1000 and 10000 random services, and of
// 100 Maglev services, whose tables make each one costlier. Every run uses
// new VIPs, so each apply adds its services from scratch next to what
// earlier runs left.
func configRows(c *Context, u *upgradeLab) ([]Row, error) {
	type job struct {
		n, backends int
		alg         string
		samples     []float64
	}
	jobs := []*job{{n: 1, backends: 1, alg: "random"}, {n: 1000, backends: 1, alg: "random"},
		{n: 10000, backends: 1, alg: "random"}, {n: 100, backends: 3, alg: "maglev"}}
	for run := range configRuns {
		for k, j := range jobs {
			net := byte(100 + len(jobs)*run + k) // distinct VIP and backend nets per apply
			svcs := fillers(net, net+50, j.n, j.backends)
			took, err := u.h.apply(u.e, fmt.Sprintf("config-%d-%d.json", run, k), serviceArgs(svcs, j.alg))
			if err != nil {
				return nil, fmt.Errorf("apply %d %s services: %w", j.n, j.alg, err)
			}
			j.samples = append(j.samples, took.Seconds())
			c.Logf("config run %d/%d: %d %s services applied in %v", run+1, configRuns, j.n, j.alg, took.Round(time.Millisecond))
		}
	}
	var rows []Row
	for _, j := range jobs {
		what := fmt.Sprintf("random, %d backend each", j.backends)
		if j.alg == "maglev" {
			what = fmt.Sprintf("maglev M=16381, %d backends each", j.backends)
		}
		row := Row{
			Name: fmt.Sprintf("configure %s through hotpath: one `hotpath lb service apply` (%s), CLI wall time incl. process start; %d runs, new VIPs each",
				serviceCount(j.n), what, configRuns),
			Unit: UnitSeconds, Samples: j.samples,
		}
		if j.n > 1 {
			row.Note = fmt.Sprintf("%s per service", format(Median(j.samples)/float64(j.n), UnitSeconds))
		}
		if j.alg == "maglev" {
			row.Note += "; the table build is a fraction of it (maglev suite): most goes to the kernel, which waits for an RCU grace period on every update of the map-in-map lb4_maglev (one per new table), and to filling the 16381-entry table"
		}
		rows = append(rows, row)
	}
	return rows, nil
}
