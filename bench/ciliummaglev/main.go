// Command ciliummaglev times Cilium's pkg/maglev table build for the same
// backends and table sizes as hotpath's bench (bench/maglev.go), which runs
// it beside its own builder and prints the ratios. It is its own module so
// that the hotpath module never depends on Cilium.
//
//	ciliummaglev -m 16381,65521 -n 3,100,1000 -min 200ms
//
// prints one JSON object per (M, N): mean seconds, CPU seconds and bytes
// allocated per warm build (the first build of each size is not counted: Cilium keeps its
// permutation buffer between builds, and so compares warm to warm), and a
// digest of the table so the caller can see the same backends went in.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"iter"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/cilium/pkg/clustermesh/types"
	"github.com/cilium/cilium/pkg/loadbalancer"
	"github.com/cilium/cilium/pkg/maglev"
	"github.com/cilium/hive/cell"
)

// Result is one line of output.
type Result struct {
	M       uint32  `json:"m"`
	N       int     `json:"n"`
	Builds  int     `json:"builds"`
	Seconds float64 `json:"seconds_per_build"`
	Bytes   float64 `json:"bytes_per_build"`
	// CPU is the process's user+system time per build: Cilium's worker
	// pool runs on every CPU, so on a busy machine its wall time and its
	// work differ.
	CPU      float64 `json:"cpu_seconds_per_build"`
	Backends int     `json:"backends_in_table"` // distinct ids the table holds
}

func main() {
	ms := flag.String("m", "16381", "table sizes M, comma-separated")
	ns := flag.String("n", "3,100,1000", "backend counts, comma-separated")
	minRun := flag.Duration("min", 200*time.Millisecond, "keep building each size for at least this long")
	flag.Parse()
	if err := run(*ms, *ns, *minRun); err != nil {
		fmt.Fprintln(os.Stderr, "ciliummaglev:", err)
		os.Exit(1)
	}
}

func run(ms, ns string, minRun time.Duration) error {
	mList, err := ints(ms)
	if err != nil {
		return fmt.Errorf("-m: %w", err)
	}
	nList, err := ints(ns)
	if err != nil {
		return fmt.Errorf("-n: %w", err)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, m := range mList {
		cfg, err := maglev.UserConfig{TableSize: uint(m), HashSeed: maglev.DefaultHashSeed}.ToConfig()
		if err != nil {
			return err
		}
		for _, n := range nList {
			r, err := timeBuilds(cfg, uint32(m), n, minRun)
			if err != nil {
				return err
			}
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// timeBuilds builds one table to warm up, then builds for at least minRun.
func timeBuilds(cfg maglev.Config, m uint32, n int, minRun time.Duration) (Result, error) {
	// The lifecycle only collects hooks here; Start and Stop are called
	// directly.
	ml := maglev.New(cfg, &cell.DefaultLifecycle{})
	if err := ml.Start(context.Background()); err != nil {
		return Result{}, err
	}
	defer ml.Stop(context.Background())
	bs := backends(n)
	table := ml.GetLookupTable(seq(bs))
	if len(table) != int(m) {
		return Result{}, fmt.Errorf("table of %d entries for M=%d", len(table), m)
	}
	distinct := map[loadbalancer.BackendID]bool{}
	for _, id := range table {
		distinct[id] = true
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0 := cpuTime()
	start := time.Now()
	builds := 0
	for builds == 0 || time.Since(start) < minRun {
		ml.GetLookupTable(seq(bs))
		builds++
	}
	took := time.Since(start)
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&after)
	return Result{M: m, N: n, Builds: builds, Seconds: took.Seconds() / float64(builds),
		Bytes: float64(after.TotalAlloc-before.TotalAlloc) / float64(builds), CPU: cpu / float64(builds),
		Backends: len(distinct)}, nil
}

// cpuTime is the user+system seconds this process has run.
func cpuTime() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// backends are the bench's: ids 1..n at 10.a.b.c:8080 (c = i & 0xff, ...),
// equal weights, TCP.
func backends(n int) []maglev.BackendInfo {
	out := make([]maglev.BackendInfo, n)
	for i := range out {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		out[i] = maglev.BackendInfo{
			ID:     loadbalancer.BackendID(i + 1),
			Addr:   loadbalancer.NewL3n4Addr(loadbalancer.TCP, types.AddrClusterFrom(a, 0), 8080, loadbalancer.ScopeExternal),
			Weight: 1,
		}
	}
	return out
}

func seq(bs []maglev.BackendInfo) iter.Seq[maglev.BackendInfo] {
	return func(yield func(maglev.BackendInfo) bool) {
		for _, b := range bs {
			if !yield(b) {
				return
			}
		}
	}
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%q: want positive integers", s)
		}
		out = append(out, v)
	}
	return out, nil
}
