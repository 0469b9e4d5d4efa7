package supervisor

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/hotpath/hotpath/core/pin"
)

// AutoGrowConfig is the "auto_grow" block of the config: a sizable map
// that stays at least Threshold full for Checks checks in a row doubles,
// live (a resize with reason auto-grow), up to MaxEntries. Off unless
// Enabled.
type AutoGrowConfig struct {
	Enabled    bool     `json:"enabled"`
	Interval   string   `json:"interval,omitempty"`    // between checks; default 30s
	Threshold  float64  `json:"threshold,omitempty"`   // fill ratio, default 0.85
	Checks     int      `json:"checks,omitempty"`      // consecutive full checks, default 3
	MaxEntries uint32   `json:"max_entries,omitempty"` // ceiling, default 16777216
	Maps       []string `json:"maps,omitempty"`        // default: ct4, ct_any4, nat4
}

// Auto-grow defaults (Calico grows its conntrack map the same way).
const (
	growInterval  = 30 * time.Second
	growThreshold = 0.85
	growChecks    = 3
)

func (c *AutoGrowConfig) validate() error {
	if c == nil {
		return nil
	}
	if c.Interval != "" {
		d, err := time.ParseDuration(c.Interval)
		if err != nil || d < 10*time.Millisecond {
			return fmt.Errorf("auto_grow interval %q: want a duration of at least 10ms", c.Interval)
		}
	}
	if c.Threshold < 0 || c.Threshold > 1 {
		return fmt.Errorf("auto_grow threshold %v: want 0..1", c.Threshold)
	}
	if c.Checks < 0 {
		return fmt.Errorf("auto_grow checks %d: want at least 1", c.Checks)
	}
	if c.MaxEntries != 0 && (c.MaxEntries < minMapSize || c.MaxEntries > maxMapSize) {
		return fmt.Errorf("auto_grow max_entries %d: want %d..%d", c.MaxEntries, minMapSize, maxMapSize)
	}
	for _, n := range c.Maps {
		if !pin.Sizable[n] {
			return fmt.Errorf("auto_grow maps: %s is not a sizable shared map", n)
		}
	}
	return nil
}

// autoGrow counts, per map, the checks in a row that found it full.
type autoGrow struct {
	cfg      AutoGrowConfig
	interval time.Duration
	full     map[string]int
	capped   map[string]bool // logged once: at the ceiling already
}

func newAutoGrow(c AutoGrowConfig) *autoGrow {
	g := &autoGrow{cfg: c, interval: growInterval, full: map[string]int{}, capped: map[string]bool{}}
	if d, err := time.ParseDuration(c.Interval); err == nil {
		g.interval = d
	}
	if g.cfg.Threshold == 0 {
		g.cfg.Threshold = growThreshold
	}
	if g.cfg.Checks == 0 {
		g.cfg.Checks = growChecks
	}
	if g.cfg.MaxEntries == 0 {
		g.cfg.MaxEntries = maxMapSize
	}
	if len(g.cfg.Maps) == 0 {
		g.cfg.Maps = []string{"ct4", "ct_any4", "nat4"}
	}
	sort.Strings(g.cfg.Maps)
	return g
}

// startAutoGrow checks the maps every interval until ctx ends, when the
// config enables it.
func (s *Supervisor) startAutoGrow(ctx context.Context) {
	if s.cfg.AutoGrow == nil || !s.cfg.AutoGrow.Enabled {
		return
	}
	s.grow = newAutoGrow(*s.cfg.AutoGrow)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(s.grow.interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.checkGrowth(ctx)
			}
		}
	}()
}

// checkGrowth is one check of every map; a map full for the configured
// number of checks in a row doubles.
func (s *Supervisor) checkGrowth(ctx context.Context) {
	g := s.grow
	for _, name := range g.cfg.Maps {
		m := s.sharedMap(name)
		if m == nil {
			continue
		}
		n, err := pin.Count(m)
		if err != nil {
			continue
		}
		size := m.MaxEntries()
		if float64(n) < g.cfg.Threshold*float64(size) {
			g.full[name] = 0
			continue
		}
		g.full[name]++
		if g.full[name] < g.cfg.Checks {
			continue
		}
		to := min(uint64(size)*2, uint64(g.cfg.MaxEntries))
		if to <= uint64(size) {
			if !g.capped[name] {
				s.log.Warn("map full at its auto-grow ceiling", "map", name, "entries", n, "max_entries", size)
				g.capped[name] = true
			}
			continue
		}
		g.full[name] = 0
		var res *ResizeResult
		err = s.serial(ctx, func(ctx context.Context) error {
			var rerr error
			res, rerr = s.resize(ctx, name, uint32(to), "auto-grow", false)
			return rerr
		})
		if err != nil {
			s.log.Error("auto-grow map", "map", name, "entries", n, "max_entries", size, "error", err)
			continue
		}
		s.log.Info("map auto-grown", "map", name, "entries", n, "from", size, "to", to,
			"threshold", g.cfg.Threshold, "checks", g.cfg.Checks, "took", res.Remap.Took)
	}
}
