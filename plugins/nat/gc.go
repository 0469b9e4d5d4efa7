package nat

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/hashicorp/go-hclog"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/natmap"
)

// GC purges orphaned mappings: those whose flow has no live CT entry. The
// datapath already takes over a dead flow's port when it needs it; the GC
// keeps the map from filling with dead entries and answers the datapath's
// exhaustion signal at once. Only the instance holding the lease runs one.
type GC struct {
	NAT *ebpf.Map
	CT  natmap.CTMaps
	Log hclog.Logger

	mu    sync.Mutex // one pass at a time
	stats GCStats
}

// GCStats are cumulative.
type GCStats struct {
	Runs         uint64        `json:"runs"`
	Signals      uint64        `json:"signals"` // passes run because the datapath ran out of ports
	Scanned      uint64        `json:"scanned"`
	Purged       uint64        `json:"purged"` // orphaned entries deleted
	Kept         uint64        `json:"kept"`   // orphans at scan, live again at delete
	LastDuration time.Duration `json:"last_duration_ns"`
}

// PassResult is what one pass did.
type PassResult struct{ Scanned, Purged, Kept int }

// Pass scans nat4 once and deletes the entries of flows without a live CT
// entry. Each candidate is re-read immediately before its delete, as CT GC
// does: the datapath may have refreshed the flow or handed the port to a new
// flow since the scan (a changed entry or claim), and then it stays.
func Pass(m *ebpf.Map, ct natmap.CTMaps, now func() uint32) (PassResult, error) {
	var res PassResult
	type cand struct {
		k abi.NAT4Key
		v abi.NAT4Entry
	}
	var dead []cand
	t := now()
	err := natmap.Scan(m, func(k *abi.NAT4Key, v *abi.NAT4Entry) bool {
		res.Scanned++
		if !ct.Live(natmap.FlowOf(k, v), t) {
			dead = append(dead, cand{*k, *v})
		}
		return true
	})
	if err != nil {
		return res, err
	}
	for _, c := range dead {
		t := now()
		var cur abi.NAT4Entry
		if err := m.Lookup(&c.k, &cur); err != nil {
			continue // gone already
		}
		if cur != c.v || ct.Live(natmap.FlowOf(&c.k, &cur), t) {
			res.Kept++
			continue
		}
		if err := m.Delete(&c.k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return res, fmt.Errorf("delete nat entry: %w", err)
		}
		res.Purged++
	}
	return res, nil
}

// RunOnce runs one pass and records it.
func (g *GC) RunOnce(signal bool) (PassResult, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	start := time.Now()
	res, err := Pass(g.NAT, g.CT, ctmap.Now)
	g.stats.Runs++
	if signal {
		g.stats.Signals++
	}
	g.stats.Scanned += uint64(res.Scanned)
	g.stats.Purged += uint64(res.Purged)
	g.stats.Kept += uint64(res.Kept)
	g.stats.LastDuration = time.Since(start)
	if err != nil {
		return res, fmt.Errorf("nat gc: %w", err)
	}
	if g.Log != nil && (res.Purged > 0 || signal) {
		g.Log.Info("nat gc pass", "signal", signal, "scanned", res.Scanned, "purged", res.Purged, "kept", res.Kept, "took", time.Since(start))
	}
	return res, nil
}

// Stats returns a copy of the cumulative statistics.
func (g *GC) Stats() GCStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stats
}

// Run passes every interval and at once whenever the datapath signals
// exhaustion on sig, until ctx ends. report sees the outcome of every pass
// (nil for a good one). Without the signal ring the GC still runs on its
// interval; that failure is logged and reported once.
func (g *GC) Run(ctx context.Context, interval time.Duration, sig *ebpf.Map, report func(error)) {
	wake := make(chan struct{}, 1)
	if sig != nil {
		rd, err := ringbuf.NewReader(sig)
		if err != nil {
			err = fmt.Errorf("nat gc: read exhaustion signals: %w", err)
			if g.Log != nil {
				g.Log.Error("nat gc", "error", err)
			}
			report(err)
		} else {
			go func() { <-ctx.Done(); rd.Close() }()
			go func() {
				for {
					if _, err := rd.Read(); err != nil {
						return // closed
					}
					select {
					case wake <- struct{}{}:
					default: // a pass is pending already
					}
				}
			}()
		}
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		signal := false
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-wake:
			signal = true
		}
		_, err := g.RunOnce(signal)
		report(err)
	}
}
