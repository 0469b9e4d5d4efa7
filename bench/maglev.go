package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/hotpath/hotpath/plugins/lb/maglev"
)

// maglevMinRun is how long one run keeps building, so a fast build is
// timed over many iterations.
const maglevMinRun = 200 * time.Millisecond

// The sizes both builders are timed at: the default M and two larger
// ones, from the 3 backends of the scale rows to 1000.
var (
	maglevSizes    = []uint32{16381, 65521, 131071}
	maglevBackends = []int{3, 10, 100, 1000}
)

// ciliumMaglev is the binary of bench/ciliummaglev (its own module, so
// hotpath never depends on Cilium), which `make bench` builds into --bin.
const ciliumMaglev = "ciliummaglev"

// ciliumVersion is the version bench/ciliummaglev/go.mod requires.
const ciliumVersion = "v1.20.2"

type maglevKey struct {
	m uint32
	n int
}

// maglevSuite times hotpath's table build beside Cilium's pkg/maglev for
// the same backends and M, in the same run: each run times every size with
// ours, then with Cilium's (a child process), warm to warm.
func maglevSuite(c *Context) ([]Row, error) {
	ours, allocs, cpu := map[maglevKey][]float64{}, map[maglevKey][]float64{}, map[maglevKey][]float64{}
	cil, cilAllocs, cilCPU := map[maglevKey][]float64{}, map[maglevKey][]float64{}, map[maglevKey][]float64{}
	bin := filepath.Join(c.Bin, ciliumMaglev)
	_, statErr := os.Stat(bin)
	// Each size is timed with ours and then at once with Cilium's, so
	// both see the same moment of a shared VM's load.
	for run := range c.Runs {
		for _, m := range maglevSizes {
			for _, n := range maglevBackends {
				k := maglevKey{m, n}
				t, a, u, err := timeBuilds(benchBackends(n), m)
				if err != nil {
					return nil, err
				}
				ours[k], allocs[k], cpu[k] = append(ours[k], t), append(allocs[k], a), append(cpu[k], u)
				if statErr != nil {
					continue
				}
				r, err := runCiliumMaglev(bin, m, n)
				if err != nil {
					return nil, err
				}
				cil[k], cilAllocs[k], cilCPU[k] = append(cil[k], r.Seconds), append(cilAllocs[k], r.Bytes), append(cilCPU[k], r.CPU)
			}
		}
		c.Logf("maglev run %d/%d done", run+1, c.Runs)
	}
	base := "Cilium " + ciliumVersion + " pkg/maglev (bench/ciliummaglev), same backends and M, warm, its worker pool on every CPU"
	var rows []Row
	for _, m := range maglevSizes {
		for _, n := range maglevBackends {
			k := maglevKey{m, n}
			p := fmt.Sprintf("M=%d, %d backends, equal weights", m, n)
			build := Row{Name: "maglev.Build time per table (warm), " + p, Unit: UnitSeconds, Samples: ours[k],
				BaseName: base, Base: cil[k], Target: RatioBelow(1).Because("our build is slower than Cilium's at this size")}
			work := Row{Name: "maglev.Build CPU time per table (process user+system; Cilium's pool runs on every CPU, so on a busy VM its wall time is not its work), " + p,
				Unit: UnitSeconds, Samples: cpu[k], BaseName: base, Base: cilCPU[k], Target: RatioBelow(1).Because("our build does more work than Cilium's at this size")}
			bytes := Row{Name: "maglev.Build bytes allocated per table (incl. the 4·M-byte result), " + p, Unit: UnitBytes,
				Samples: allocs[k], BaseName: base, Base: cilAllocs[k]}
			if statErr != nil {
				build.Target, build.Note = nil, fmt.Sprintf("no Cilium comparison: %v (make bench builds bench/ciliummaglev)", statErr)
				work.Target = nil
			}
			rows = append(rows, build, work, bytes)
			c.Logf("maglev M=%d N=%d: ours %s, Cilium %s", m, n, format(Median(ours[k]), UnitSeconds), format(Median(cil[k]), UnitSeconds))
		}
	}
	return rows, nil
}

// ciliumResult is one line of bench/ciliummaglev's output.
type ciliumResult struct {
	M        uint32  `json:"m"`
	N        int     `json:"n"`
	Seconds  float64 `json:"seconds_per_build"`
	Bytes    float64 `json:"bytes_per_build"`
	CPU      float64 `json:"cpu_seconds_per_build"`
	Backends int     `json:"backends_in_table"`
}

// runCiliumMaglev times Cilium's builds of M=m over n backends in a child
// process (warm: its first build is not counted).
func runCiliumMaglev(bin string, m uint32, n int) (ciliumResult, error) {
	cmd := exec.Command(bin, "-m", fmt.Sprint(m), "-n", fmt.Sprint(n), "-min", maglevMinRun.String())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return ciliumResult{}, fmt.Errorf("run %s: %w: %s", bin, err, strings.TrimSpace(stderr.String()))
	}
	var r ciliumResult
	if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
		return r, fmt.Errorf("read %s output %q: %w", bin, out, err)
	}
	// Same backends in: every one of them holds part of the table.
	if r.M != m || r.N != n || r.Backends != n {
		return r, fmt.Errorf("cilium table for M=%d N=%d: got M=%d N=%d holding %d backends", m, n, r.M, r.N, r.Backends)
	}
	return r, nil
}

// benchBackends are ids 1..n at 10.a.b.c:8080, equal weights: what
// bench/ciliummaglev gives Cilium.
func benchBackends(n int) []maglev.Backend {
	bs := make([]maglev.Backend, n)
	for i := range bs {
		bs[i] = maglev.Backend{ID: uint32(i + 1), Key: fmt.Sprintf("10.%d.%d.%d:8080", i>>16, i>>8&0xff, i&0xff), Weight: 1}
	}
	return bs
}

// timeBuilds builds one table to warm up, then tables for at least
// maglevMinRun, and returns the mean seconds, bytes allocated
// (runtime.MemStats.TotalAlloc, which counts every allocation, freed or
// not) and process CPU seconds per build.
func timeBuilds(bs []maglev.Backend, m uint32) (float64, float64, float64, error) {
	if _, err := maglev.Build(bs, m, 0); err != nil {
		return 0, 0, 0, err
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0 := cpuSeconds()
	start := time.Now()
	n := 0
	for n == 0 || time.Since(start) < maglevMinRun {
		if _, err := maglev.Build(bs, m, 0); err != nil {
			return 0, 0, 0, err
		}
		n++
	}
	took := time.Since(start)
	cpu := cpuSeconds() - cpu0
	runtime.ReadMemStats(&after)
	return took.Seconds() / float64(n), float64(after.TotalAlloc-before.TotalAlloc) / float64(n), cpu / float64(n), nil
}

// cpuSeconds is the user+system time this process has run (the bench is
// idle otherwise while the maglev suite runs).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
