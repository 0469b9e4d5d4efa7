package bench

import (
	"fmt"
	"runtime"
	"time"

	"github.com/hotpath/hotpath/plugins/lb/maglev"
)

// maglevMinRun is how long one run keeps building, so a fast build is
// timed over many iterations.
const maglevMinRun = 200 * time.Millisecond

func maglevSuite(c *Context) ([]Row, error) {
	var rows []Row
	for _, m := range []uint32{16381, 65521} {
		for _, n := range []int{100, 1000} {
			bs := make([]maglev.Backend, n)
			for i := range bs {
				bs[i] = maglev.Backend{ID: uint32(i + 1), Key: fmt.Sprintf("10.%d.%d.%d:8080", i>>16, i>>8&0xff, i&0xff), Weight: 1}
			}
			var times, allocs []float64
			for range c.Runs {
				t, a, err := timeBuilds(bs, m)
				if err != nil {
					return nil, err
				}
				times, allocs = append(times, t), append(allocs, a)
			}
			p := fmt.Sprintf("M=%d, %d backends, equal weights", m, n)
			rows = append(rows,
				Row{Name: "maglev.Build time per table, " + p, Unit: UnitSeconds, Samples: times},
				Row{Name: "maglev.Build bytes allocated per table (incl. the 4·M-byte result), " + p, Unit: UnitBytes, Samples: allocs},
			)
			c.Logf("maglev M=%d N=%d: %s, %s", m, n, format(Median(times), UnitSeconds), format(Median(allocs), UnitBytes))
		}
	}
	return rows, nil
}

// timeBuilds builds tables for at least maglevMinRun and returns the mean
// seconds and bytes allocated per build (runtime.MemStats.TotalAlloc, which
// counts every allocation, freed or not).
func timeBuilds(bs []maglev.Backend, m uint32) (float64, float64, error) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	n := 0
	for n == 0 || time.Since(start) < maglevMinRun {
		if _, err := maglev.Build(bs, m, 0); err != nil {
			return 0, 0, err
		}
		n++
	}
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	return took.Seconds() / float64(n), float64(after.TotalAlloc-before.TotalAlloc) / float64(n), nil
}
