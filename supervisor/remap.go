package supervisor

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/supervisor/host"
)

// A remap replaces shared maps while traffic flows: a live resize
// (`hotpath map resize`, auto-grow) or a schema migration (a plugin upgrade
// that changes a map's value layout). It is one mechanism for every plugin
// and every hash or LRU shared map:
//
//  1. create: each new map from its spec (another max_entries, or another
//     layout), pinned under <bpffs>/remap/<name> (pin.Layout.Remap).
//  2. copy: every entry, with batch lookups and updates (pin.Copy), converted
//     by the map's Convert if the layout changes. The snapshot of what was
//     copied stays in memory as the baseline of the delta passes.
//  3. pause: every plugin that uses a remapped map is deactivated (its GC
//     and its control commands stop, and with them every userspace handle
//     on the old map).
//  4. swap: the pins are exchanged atomically (renameat2 RENAME_EXCHANGE):
//     <bpffs>/maps/<name> is the new map, remap/<name> the old one. The
//     datapath still runs generation N against the old map.
//  5. build: every plugin that uses a remapped map (Describe lists it, or
//     its live programs reference it) loads its programs into generation
//     N+1, against the pins, so against the new map; the others re-insert
//     theirs. No program of N+1 may still reference an old map.
//  6. delta: entries created, changed or deleted in the old map since the
//     copy are carried over (pin.Snapshot.Delta), just before the flip.
//  7. flip: N+1 live with one store. After an RCU grace period no packet
//     runs N any more.
//  8. merge: what packets of N wrote into the old map after the delta pass
//     is merged into the new map by the map kind's rule (mergeFor: CT
//     counters add the old map's increase, lifetimes take the later one,
//     flags are or-ed; other maps keep the new map's entry and take what
//     it lacks).
//  9. commit: the old map is unpinned and closed, the supervisor's own
//     handles (status, metrics, auto-grow) move to the new map, the new
//     size is recorded in the state file, and the paused plugins are
//     activated again: they open the pins, so the new maps.
//
// Any failure before the flip (creation, copy, a verifier rejection of the
// new programs) puts the pins back and leaves the old map serving; the
// error says which step failed. The transaction is persisted (remaptx.go):
// a supervisor killed midway undoes it on restart before the flip and
// finishes it after.
//
// The schema half uses the same steps with a RemapMap whose Spec has the
// new layout and whose Convert and Merge work on it, and with Loaders
// naming the upgrade's new instance for the upgraded plugin.

// RemapMap is one map of a remap.
type RemapMap struct {
	Name string
	// Spec is the new map's: the pinned map's spec with another
	// MaxEntries, or another value layout together with Convert.
	Spec    *ebpf.MapSpec
	Convert pin.Convert // old entry -> new layout; nil: same layout
	// Merge merges old-generation writes after the switch (nil: the map
	// kind's rule, mergeFor); Recover does it when a restarted supervisor
	// finishes the remap without the snapshot (nil: recoverFor).
	Merge, Recover pin.Merge
}

// RemapPlan is what one remap does.
type RemapPlan struct {
	Maps   []RemapMap
	Reason string // resize, auto-grow, upgrade ...: for logs and metrics
	// Loaders names the instance a plugin loads its programs for the new
	// generation through, when it is not its current one (an upgrade's
	// new instance). Every plugin using a remapped map reloads either way.
	Loaders map[string]*host.Instance
}

// RemapResult reports one remap.
type RemapResult struct {
	Reason     string          `json:"reason"`
	Maps       []RemapMapStats `json:"maps"`
	Plugins    []string        `json:"plugins_reloaded"`
	Generation uint32          `json:"generation"`
	Previous   uint32          `json:"previous_generation"`
	Took       time.Duration   `json:"took_ns"`
	// Pause is how long the plugins using the maps were deactivated (GC
	// and control commands paused), swap to re-activation.
	Pause time.Duration `json:"pause_ns"`
	// Programs are the pins each reloaded plugin loaded for Generation; an
	// upgrade adopts its new instance's.
	Programs map[string]map[string]string `json:"-"`
}

// RemapMapStats is one map of a RemapResult.
type RemapMapStats struct {
	Name       string        `json:"name"`
	From       uint32        `json:"from_max_entries"`
	To         uint32        `json:"to_max_entries"`
	Entries    int           `json:"entries"` // copied
	Copy       time.Duration `json:"copy_ns"`
	Delta      int           `json:"delta_written"`
	DeltaGone  int           `json:"delta_deleted"`
	DeltaTook  time.Duration `json:"delta_ns"`
	Merged     int           `json:"merged"`
	MergeTook  time.Duration `json:"merge_ns"`
	OldID      uint32        `json:"old_id"`
	NewID      uint32        `json:"new_id"`
	MemoryFrom uint64        `json:"memory_before_bytes"`
	MemoryTo   uint64        `json:"memory_after_bytes"`
}

// mergeFor is the rule by which a map kind merges what old-generation
// packets wrote after the switch.
func mergeFor(name string) pin.Merge {
	switch name {
	case abi.MapCT4, abi.MapCTAny4:
		return ctmap.Merge
	}
	// NAT mappings, services, backends, affinity: what the new generation
	// wrote meanwhile is what its packets rely on; the old map only adds
	// entries the new one lacks.
	return nil
}

// recoverFor is mergeFor without a baseline.
func recoverFor(name string) pin.Merge {
	switch name {
	case abi.MapCT4, abi.MapCTAny4:
		return ctmap.MergeMax
	}
	return nil
}

// Remap runs plan as one change (serial.go).
func (s *Supervisor) Remap(ctx context.Context, plan RemapPlan) (*RemapResult, error) {
	var res *RemapResult
	var rerr error
	err := s.serial(ctx, func(ctx context.Context) error {
		res, rerr = s.remap(ctx, plan)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("remap: %w", err)
	}
	return res, rerr
}

// remap runs plan on the change goroutine: see the steps above.
func (s *Supervisor) remap(ctx context.Context, plan RemapPlan) (*RemapResult, error) {
	start := time.Now()
	tx, err := s.beginRemap(plan)
	if err != nil {
		return nil, err
	}
	if err := tx.create(); err != nil {
		return nil, tx.abort(ctx, "create", err)
	}
	if err := tx.copy(); err != nil {
		return nil, tx.abort(ctx, "copy", err)
	}
	if err := tx.pause(ctx); err != nil {
		return nil, tx.abort(ctx, "pause plugins", err)
	}
	if err := tx.swap(); err != nil {
		return nil, tx.abort(ctx, "swap pins", err)
	}
	if err := tx.build(ctx); err != nil {
		return nil, tx.abort(ctx, "load programs against the new maps", err)
	}
	if err := tx.delta(); err != nil {
		return nil, tx.abort(ctx, "delta copy", err)
	}
	if err := tx.flip(); err != nil {
		return nil, tx.abort(ctx, "flip", err)
	}
	// Past the flip the new maps serve: what remains is finished, by this
	// process or by the next one.
	tx.merge()
	tx.commit(ctx)
	tx.res.Took = time.Since(start)
	for _, m := range tx.res.Maps {
		s.metrics.resized(m.Name, plan.Reason)
		s.log.Info("map remapped", "map", m.Name, "reason", plan.Reason, "from", m.From, "to", m.To,
			"entries", m.Entries, "copy", m.Copy, "delta", m.Delta, "merged", m.Merged, "generation", tx.res.Generation, "took", tx.res.Took)
	}
	return tx.res, nil
}

// remapUsers are the plugins that must reload for a remap of maps (ids are
// the old maps' ids): those whose Describe lists one of the maps, and
// those whose live programs reference one. Callers hold mu.
func (s *Supervisor) remapUsers(names map[string]bool, ids map[ebpf.MapID]bool) []string {
	var out []string
	for name, m := range s.plugins {
		use := false
		if m.inst != nil {
			for _, ms := range m.inst.Desc.Maps {
				use = use || names[ms.Name]
			}
		}
		if ps := s.state.Plugins[name]; !use && ps != nil {
			for _, p := range ps.Programs {
				use = use || programUses(p, ids)
			}
		}
		if use {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// programUses tells whether the program pinned at path references one of
// the maps ids.
func programUses(path string, ids map[ebpf.MapID]bool) bool {
	p, err := ebpf.LoadPinnedProgram(path, nil)
	if err != nil {
		return false
	}
	defer p.Close()
	return progUses(p, ids)
}

func progUses(p *ebpf.Program, ids map[ebpf.MapID]bool) bool {
	info, err := p.Info()
	if err != nil {
		return false
	}
	used, _ := info.MapIDs()
	for _, id := range used {
		if ids[id] {
			return true
		}
	}
	return false
}

// memlock is the kernel memory charged for m, 0 when unknown.
func memlock(m *ebpf.Map) uint64 {
	info, err := m.Info()
	if err != nil {
		return 0
	}
	b, _ := info.Memlock()
	return b
}

func mapID(m *ebpf.Map) ebpf.MapID {
	info, err := m.Info()
	if err != nil {
		return 0
	}
	id, _ := info.ID()
	return id
}

// sharedMap is the supervisor's handle of shared map name; a live resize
// may replace it (useMap), so it is read under mu.
func (s *Supervisor) sharedMap(name string) *ebpf.Map {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maps.ByName[name]
}
