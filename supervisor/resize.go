package supervisor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/pin"
)

// ResizeRequest is the body of POST /v1/maps/{name}/resize.
type ResizeRequest struct {
	MaxEntries uint32 `json:"max_entries"`
	DryRun     bool   `json:"dry_run,omitempty"`
}

// ResizeResult answers a resize, done or dry-run.
type ResizeResult struct {
	Map          string        `json:"map"`
	From         uint32        `json:"from_max_entries"`
	To           uint32        `json:"to_max_entries"`
	Entries      int           `json:"entries"`
	MemoryBefore uint64        `json:"memory_before_bytes"`
	MemoryAfter  uint64        `json:"memory_after_bytes"` // estimated on a dry run
	Estimate     time.Duration `json:"estimate_ns"`
	Plugins      []string      `json:"plugins_reloaded"`
	DryRun       bool          `json:"dry_run"`
	Remap        *RemapResult  `json:"remap,omitempty"`
}

// Map size bounds, as for the config's map_sizes.
const (
	minMapSize = 1024
	maxMapSize = 1 << 24
)

// The time estimate of a dry run is calibrated on the machine itself by
// the entry count it takes anyway (one batch scan of the map): on the
// 2-CPU VMs of `make bench` (bench/remap.go) a copy costs ~3.5 such scans,
// the delta and merge passes one each, and a plugin reloads its programs
// in ~0.5 s.
const (
	estScans       = 5.5
	estPluginLoad  = 500 * time.Millisecond
	resizeHeadroom = 10 // percent of the new size left free
)

// Resize changes shared map name's max_entries while traffic flows (a
// remap with the same layout); with DryRun it only says what it would do.
func (s *Supervisor) Resize(ctx context.Context, name string, req ResizeRequest) (*ResizeResult, error) {
	var res *ResizeResult
	var rerr error
	err := s.serial(ctx, func(ctx context.Context) error {
		res, rerr = s.resize(ctx, name, req.MaxEntries, "resize", req.DryRun)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("resize %s: %w", name, err)
	}
	return res, rerr
}

// resize checks and runs one resize on the change goroutine.
func (s *Supervisor) resize(ctx context.Context, name string, size uint32, reason string, dry bool) (*ResizeResult, error) {
	res, spec, err := s.planResize(name, size)
	if err != nil {
		return res, err
	}
	res.DryRun = dry
	if dry {
		return res, nil
	}
	r, err := s.remap(ctx, RemapPlan{Reason: reason, Maps: []RemapMap{{Name: name, Spec: spec}}})
	if err != nil {
		return res, err
	}
	res.Remap, res.Plugins = r, r.Plugins
	res.MemoryAfter = r.Maps[0].MemoryTo
	return res, nil
}

// planResize refuses what cannot be done and describes the rest: entries,
// memory before and after, the plugins that will reload, a time estimate.
func (s *Supervisor) planResize(name string, size uint32) (*ResizeResult, *ebpf.MapSpec, error) {
	res := &ResizeResult{Map: name, To: size}
	if !pin.Sizable[name] {
		return res, nil, fmt.Errorf("resize %s: not a sizable shared map (have %s)", name, strings.Join(pin.SizableNames(), ", "))
	}
	if size < minMapSize || size > maxMapSize {
		return res, nil, fmt.Errorf("resize %s to %d: want %d..%d entries", name, size, minMapSize, maxMapSize)
	}
	s.mu.Lock()
	old := s.maps.ByName[name]
	s.mu.Unlock()
	if old == nil {
		return res, nil, fmt.Errorf("resize %s: no such shared map", name)
	}
	res.From = old.MaxEntries()
	if size == res.From {
		return res, nil, fmt.Errorf("resize %s: it has %d entries already", name, size)
	}
	counted := time.Now()
	n, err := pin.Count(old)
	scan := time.Since(counted)
	if err != nil {
		return res, nil, fmt.Errorf("resize %s: count entries: %w", name, err)
	}
	res.Entries = n
	if room := uint64(size) * (100 - resizeHeadroom) / 100; uint64(n) > room {
		need := uint64(n)*100/(100-resizeHeadroom) + 1
		return res, nil, fmt.Errorf("resize %s to %d refused: it holds %d entries, more than %d%% of %d (an LRU map evicts before it is full); the map is unchanged, choose at least %d",
			name, size, n, 100-resizeHeadroom, size, need)
	}
	spec, err := resizeSpec(name, old, size)
	if err != nil {
		return res, nil, err
	}
	res.MemoryBefore = memlock(old)
	if res.From > 0 {
		res.MemoryAfter = res.MemoryBefore * uint64(size) / uint64(res.From)
	}
	s.mu.Lock()
	res.Plugins = s.remapUsers(map[string]bool{name: true}, map[ebpf.MapID]bool{mapID(old): true})
	s.mu.Unlock()
	res.Estimate = time.Duration(estScans*float64(scan)) + time.Duration(len(res.Plugins))*estPluginLoad
	return res, spec, nil
}

// resizeSpec is the spec of map name at another size: this build's spec
// (with its BTF), which the pinned map must match but for its size.
func resizeSpec(name string, old *ebpf.Map, size uint32) (*ebpf.MapSpec, error) {
	specs, err := pin.SharedSpecs()
	if err != nil {
		return nil, err
	}
	spec := specs[name].Copy()
	spec.MaxEntries = old.MaxEntries()
	if err := pin.Check(spec, old); err != nil {
		return nil, fmt.Errorf("resize %s: the pinned map is not this build's: %w", name, err)
	}
	spec.MaxEntries = size
	return spec, nil
}

// mapSizes are the sizes the sizable maps are opened with: the config's,
// except where a live resize set one since while the config still says
// what it said then. Where the config changed since, the map is opened at
// its resized size and resized live to the config's once the supervisor
// is up (resizeAtStart).
func (s *Supervisor) mapSizes() map[string]uint32 {
	out := map[string]uint32{}
	for n, v := range s.cfg.MapSizes {
		out[n] = v
	}
	for n, ms := range s.state.MapSizes {
		if ms == nil || !pin.Sizable[n] {
			continue
		}
		out[n] = ms.Size
		if ms.Configured != s.cfg.MapSizes[n] {
			want := s.cfg.MapSizes[n]
			if want == 0 {
				if specs, err := pin.SharedSpecs(); err == nil && specs[n] != nil {
					want = specs[n].MaxEntries
				}
			}
			if want != 0 && want != ms.Size {
				if s.resizeStart == nil {
					s.resizeStart = map[string]uint32{}
				}
				s.resizeStart[n] = want
			}
		}
	}
	return out
}

// recordSize keeps a resized map's size over restarts. Callers hold mu (or
// run before there is concurrency).
func (s *Supervisor) recordSize(name string, size uint32) {
	if s.state.MapSizes == nil {
		s.state.MapSizes = map[string]*MapSize{}
	}
	s.state.MapSizes[name] = &MapSize{Size: size, Configured: s.cfg.MapSizes[name]}
}

// resizeAtStart resizes the maps whose configured size changed since a
// live resize; a refusal (too many entries) is logged and the map keeps
// its size.
func (s *Supervisor) resizeAtStart(ctx context.Context) {
	for name, size := range s.resizeStart {
		s.log.Info("config map_sizes changed since the last resize: resizing", "map", name, "to", size)
		if _, err := s.resize(ctx, name, size, "config", false); err != nil {
			s.log.Error("resize to the configured size", "map", name, "error", err)
		}
	}
	s.resizeStart = nil
}
