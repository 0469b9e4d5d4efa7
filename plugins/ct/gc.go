package ct

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/hashicorp/go-hclog"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
)

// GC removes expired CT entries. Only the instance holding the GC lease runs
// one.
type GC struct {
	Maps map[string]*ebpf.Map // ct4, ct_any4
	Cfg  GCConfig
	Log  hclog.Logger
	// Metrics, when set, records every pass (see NewMetrics).
	Metrics *Metrics

	mu       sync.Mutex
	stats    GCStats
	lastPass time.Time           // start of the latest pass, scheduled or asked for
	sweepers map[string]*Sweeper // in-kernel passes; nil: batch lookups
	lastErr  error               // of the latest pass; nil once one succeeds
}

// GCStats are cumulative, exported as metrics and in `hotpath status`.
type GCStats struct {
	Runs         uint64        `json:"runs"`
	Deleted      uint64        `json:"deleted"`
	Scanned      uint64        `json:"scanned"`
	Kept         uint64        `json:"kept"` // expired at scan, refreshed before delete
	LastDuration time.Duration `json:"last_duration_ns"`
	LastRatio    float64       `json:"last_delete_ratio"`
	Interval     time.Duration `json:"interval_ns"`
	Method       string        `json:"method"` // sweep or batch
}

// PassResult is what one pass over one map did.
type PassResult struct {
	Scanned, Deleted, Kept int
	MaxEntries             uint32
}

// Pass scans m once and deletes every entry whose lifetime has passed. Each
// candidate is looked up again immediately before its delete: the datapath
// may have refreshed it since the scan (Cilium once shipped a batched GC
// that deleted such entries), and a refreshed entry must stay.
func Pass(m *ebpf.Map, now func() uint32) (PassResult, error) {
	info, err := m.Info()
	if err != nil {
		return PassResult{}, fmt.Errorf("map info: %w", err)
	}
	res := PassResult{MaxEntries: info.MaxEntries}
	var expired []abi.CTTuple
	t := now()
	err = ctmap.Scan(m, func(k *abi.CTTuple, v *abi.CTEntry) bool {
		res.Scanned++
		if v.Lifetime < t {
			expired = append(expired, *k)
		}
		return true
	})
	if err != nil {
		return res, err
	}
	for i := range expired {
		k := &expired[i]
		t := now()                   // clock first, entry last: the lookup is as fresh as possible
		v, err := ctmap.Lookup(m, k) // either layout
		if err != nil {
			continue // gone already (LRU eviction, flush)
		}
		if v.Lifetime >= t {
			res.Kept++
			continue
		}
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return res, fmt.Errorf("delete entry: %w", err)
		}
		res.Deleted++
	}
	return res, nil
}

// NextInterval is Cilium's adaptive GC interval (ctmap calculateInterval):
// no deletions leave the interval as it was; more than 25% of a map's
// capacity deleted shrinks it in proportion (the ratio capped at 0.9, so at
// most 10x), rounded to seconds and never below min; less than 5% grows it
// by half, rounded to seconds and never above max; 5..25% leaves it alone.
// Each bound applies only in the direction the interval moved, as in Cilium.
func NextInterval(prev time.Duration, ratio float64, min, max time.Duration) time.Duration {
	switch {
	case ratio == 0:
		return prev
	case ratio > 0.25:
		next := time.Duration(float64(prev) * (1 - math.Min(ratio, 0.9))).Round(time.Second)
		if next < min {
			next = min
		}
		return next
	case ratio < 0.05:
		next := time.Duration(float64(prev) * 1.5).Round(time.Second)
		if next > max {
			next = max
		}
		return next
	}
	return prev
}

// AdjustRatio is the correction Cilium's GetInterval makes before
// calculateInterval: a pass that came sooner than the interval planned for it
// (here: after a `gc` command ran one in between) had less time to collect,
// so its delete ratio is scaled up to what the whole interval would have
// deleted.
func AdjustRatio(ratio float64, planned, actual time.Duration) float64 {
	if actual > 0 && actual < planned {
		return ratio * float64(planned) / float64(actual)
	}
	return ratio
}

// Prepare loads the in-kernel sweep for every map when the config asks for
// it; a kernel that refuses it leaves GC on batch lookups.
func (g *GC) Prepare() {
	method := g.Cfg.Method
	if method == "" || method == "sweep" {
		sw := map[string]*Sweeper{}
		for name, m := range g.Maps {
			s, err := NewSweeper(m)
			if err != nil {
				if g.Log != nil {
					g.Log.Warn("in-kernel CT sweep unavailable, using batch lookups", "error", err)
				}
				for _, s := range sw {
					s.Close()
				}
				sw = nil
				break
			}
			sw[name] = s
		}
		g.sweepers = sw
	}
	g.mu.Lock()
	g.stats.Method = "batch"
	if g.sweepers != nil {
		g.stats.Method = "sweep"
	}
	g.mu.Unlock()
}

// Close releases the sweep programs.
func (g *GC) Close() {
	for _, s := range g.sweepers {
		s.Close()
	}
	g.sweepers = nil
}

func (g *GC) pass(name string, m *ebpf.Map) (PassResult, error) {
	if s := g.sweepers[name]; s != nil {
		return s.Pass(ctmap.Now())
	}
	return Pass(m, ctmap.Now)
}

// RunOnce passes over every map and returns the largest delete ratio.
func (g *GC) RunOnce() (float64, error) {
	start := time.Now()
	g.mu.Lock()
	g.lastPass = start
	g.mu.Unlock()
	var maxRatio float64
	var deleted, scanned, kept uint64
	for name, m := range g.Maps {
		res, err := g.pass(name, m)
		if err != nil {
			err = fmt.Errorf("gc %s: %w", name, err)
			g.failed(err)
			return 0, err
		}
		if res.MaxEntries > 0 {
			maxRatio = math.Max(maxRatio, float64(res.Deleted)/float64(res.MaxEntries))
		}
		deleted += uint64(res.Deleted)
		scanned += uint64(res.Scanned)
		kept += uint64(res.Kept)
	}
	g.mu.Lock()
	g.stats.Runs++
	g.stats.Deleted += deleted
	g.stats.Scanned += scanned
	g.stats.Kept += kept
	g.stats.LastDuration = time.Since(start)
	g.stats.LastRatio = maxRatio
	took := g.stats.LastDuration
	g.lastErr = nil
	g.mu.Unlock()
	g.Metrics.pass(scanned, deleted, kept, took, maxRatio)
	if g.Log != nil {
		g.Log.Debug("ct gc pass", "scanned", scanned, "deleted", deleted, "kept", kept, "took", time.Since(start))
	}
	return maxRatio, nil
}

// Run passes until ctx ends, adapting the interval after each pass.
func (g *GC) Run(ctx context.Context) {
	interval := g.Cfg.Start.D()
	for {
		g.mu.Lock()
		g.stats.Interval = interval
		g.mu.Unlock()
		g.Metrics.setInterval(interval)
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		g.mu.Lock()
		prev := g.lastPass
		g.mu.Unlock()
		start := time.Now()
		ratio, err := g.RunOnce()
		if err != nil {
			if g.Log != nil {
				g.Log.Error("ct gc", "error", err)
			}
			continue
		}
		var actual time.Duration
		if !prev.IsZero() {
			actual = start.Sub(prev)
		}
		interval = NextInterval(interval, AdjustRatio(ratio, interval, actual), g.Cfg.Min.D(), g.Cfg.Max.D())
	}
}

func (g *GC) failed(err error) {
	g.mu.Lock()
	g.lastErr = err
	g.mu.Unlock()
}

// Err is the error of the latest pass, nil when it succeeded: a GC that
// keeps failing makes the plugin unhealthy, whichever pass it was.
func (g *GC) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lastErr
}

// Stats returns a copy of the cumulative statistics.
func (g *GC) Stats() GCStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stats
}
