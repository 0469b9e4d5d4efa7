package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/supervisor/host"
)

// Remap phases, as persisted in RemapState.Phase. Each is saved before the
// step it names takes effect.
const (
	remapCreated = "created" // new maps pinned under remap/; the old ones serve
	remapSwapped = "swapped" // pins exchanged; generation N (old maps) still live
	remapFlipped = "flipped" // N+1 (new maps) live, or about to be
	remapMerged  = "merged"  // old-generation writes merged; cleanup left
)

// RemapState is persisted while a remap is in flight, so a supervisor that
// dies midway undoes it (before the flip) or finishes it (after) on restart.
type RemapState struct {
	Reason   string                       `json:"reason"`
	Phase    string                       `json:"phase"`
	Maps     []RemappedMap                `json:"maps"`
	OldGen   uint32                       `json:"old_generation"`
	NewGen   uint32                       `json:"new_generation,omitempty"`
	Programs map[string]map[string]string `json:"programs,omitempty"` // plugin -> slot -> pin, loaded for NewGen
	Versions map[string]string            `json:"versions,omitempty"` // plugin -> version that loaded them
}

// RemappedMap is one map of a RemapState, its maps known by id.
type RemappedMap struct {
	Name  string `json:"name"`
	OldID uint32 `json:"old_id"`
	NewID uint32 `json:"new_id"`
	From  uint32 `json:"from_max_entries"`
	To    uint32 `json:"to_max_entries"`
}

// remapTx is one remap in flight (see remap.go for the steps).
type remapTx struct {
	s       *Supervisor
	plan    RemapPlan
	maps    []*remapOne
	users   []string
	loaders map[string]*host.Instance
	paused  []string
	pauseAt time.Time
	rec     *RemapState
	swapped bool
	next    uint32
	loaded  map[string]map[string]string
	res     *RemapResult
}

type remapOne struct {
	RemapMap
	old, new *ebpf.Map
	snap     *pin.Snapshot
	st       *RemapMapStats
}

// beginRemap checks plan against the live maps and plugins; nothing
// changes yet.
func (s *Supervisor) beginRemap(plan RemapPlan) (*remapTx, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(plan.Maps) == 0 {
		return nil, errors.New("remap: no map given")
	}
	tx := &remapTx{s: s, plan: plan, loaders: map[string]*host.Instance{}, res: &RemapResult{Reason: plan.Reason, Previous: s.gens.Active()}}
	names, ids := map[string]bool{}, map[ebpf.MapID]bool{}
	for _, rm := range plan.Maps {
		old := s.maps.ByName[rm.Name]
		switch {
		case old == nil:
			return nil, fmt.Errorf("remap %s: no such shared map", rm.Name)
		case names[rm.Name]:
			return nil, fmt.Errorf("remap %s: given twice", rm.Name)
		case old.Type() != ebpf.Hash && old.Type() != ebpf.LRUHash:
			return nil, fmt.Errorf("remap %s: a %s cannot be copied entry by entry (hash and LRU hash maps only)", rm.Name, old.Type())
		case rm.Spec == nil:
			return nil, fmt.Errorf("remap %s: no spec for the new map", rm.Name)
		}
		names[rm.Name] = true
		ids[mapID(old)] = true
		st := &RemapMapStats{Name: rm.Name, From: old.MaxEntries(), To: rm.Spec.MaxEntries, OldID: uint32(mapID(old)), MemoryFrom: memlock(old)}
		tx.maps = append(tx.maps, &remapOne{RemapMap: rm, old: old, st: st})
		tx.res.Maps = append(tx.res.Maps, *st)
	}
	if s.entry != nil {
		for _, prog := range []*ebpf.Program{s.entry.Ingress, s.entry.Egress} {
			if prog != nil && progUses(prog, ids) {
				return nil, errors.New("remap: the entry programs use one of the maps; they cannot be reloaded live")
			}
		}
	}
	tx.users = s.remapUsers(names, ids)
	for _, name := range tx.users {
		m := s.plugins[name]
		inst := plan.Loaders[name]
		if inst == nil {
			if m.inst == nil || m.inst.Exited() || m.upgrading {
				return nil, fmt.Errorf("remap: plugin %s uses the maps and is not running (restarting or upgrading): try again", name)
			}
			inst = m.inst
		}
		tx.loaders[name] = inst
	}
	tx.res.Plugins = tx.users
	return tx, nil
}

// create makes every new map, pins it under remap/ and records the
// transaction.
func (tx *remapTx) create() error {
	s := tx.s
	if err := os.MkdirAll(s.layout.RemapDir(), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", s.layout.RemapDir(), err)
	}
	rec := &RemapState{Reason: tx.plan.Reason, Phase: remapCreated, OldGen: tx.res.Previous}
	for _, one := range tx.maps {
		spec := one.Spec.Copy()
		spec.Pinning = ebpf.PinNone
		m, err := ebpf.NewMap(spec)
		if err != nil {
			return fmt.Errorf("create map %s with %d entries: %w", one.Name, spec.MaxEntries, err)
		}
		one.new = m
		path := s.layout.Remap(one.Name)
		os.Remove(path) // a leftover of a remap nobody recorded
		if err := m.Pin(path); err != nil {
			return fmt.Errorf("pin new map %s at %s: %w", one.Name, path, err)
		}
		one.st.NewID = uint32(mapID(m))
		one.st.MemoryTo = memlock(m)
		rec.Maps = append(rec.Maps, RemappedMap{Name: one.Name, OldID: one.st.OldID, NewID: one.st.NewID, From: one.st.From, To: one.st.To})
	}
	tx.rec = rec
	if err := tx.save(""); err != nil {
		return err
	}
	return testPause(remapCreated)
}

// copy copies every entry of each old map into its new map.
func (tx *remapTx) copy() error {
	for _, one := range tx.maps {
		snap, st, err := pin.Copy(one.new, one.old, one.Convert)
		if err != nil {
			return err
		}
		one.snap = snap
		one.st.Entries, one.st.Copy = st.Entries, st.Took
	}
	return nil
}

// pause deactivates every plugin using the maps: their background work
// and control commands stop, and with them their handles on the old maps.
func (tx *remapTx) pause(ctx context.Context) error {
	s := tx.s
	tx.pauseAt = time.Now()
	for _, name := range tx.users {
		s.mu.Lock()
		inst := s.plugins[name].inst
		s.mu.Unlock()
		rctx, cancel := rpcContext(ctx, deactivateTimeout)
		err := inst.Datapath.Deactivate(rctx)
		cancel()
		if err != nil {
			return fmt.Errorf("deactivate plugin %s: %w", name, err)
		}
		s.mu.Lock()
		s.plugins[name].lease = false
		s.mu.Unlock()
		tx.paused = append(tx.paused, name)
	}
	return nil
}

// swap records the phase, then exchanges the pins: maps/<name> becomes
// the new map, remap/<name> the old one.
func (tx *remapTx) swap() error {
	if err := tx.save(remapSwapped); err != nil {
		return err
	}
	for _, one := range tx.maps {
		if err := exchange(tx.s.layout.Shared(one.Name), tx.s.layout.Remap(one.Name)); err != nil {
			tx.unswap()
			return fmt.Errorf("swap the pins of %s: %w", one.Name, err)
		}
	}
	tx.swapped = true
	return testPause(remapSwapped)
}

// unswap puts back every pin whose map id says it was exchanged.
func (tx *remapTx) unswap() {
	for _, one := range tx.maps {
		if pinnedID(tx.s.layout.Shared(one.Name)) == one.st.NewID {
			if err := exchange(tx.s.layout.Shared(one.Name), tx.s.layout.Remap(one.Name)); err != nil {
				tx.s.log.Error("put back the pin of the old map", "map", one.Name, "error", err)
			}
		}
	}
	tx.swapped = false
}

func exchange(a, b string) error {
	return unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
}

// pinnedID is the id of the map pinned at path, 0 if none.
func pinnedID(path string) uint32 {
	m, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		return 0
	}
	defer m.Close()
	return uint32(mapID(m))
}

// build loads the users' programs into generation N+1 against the pins,
// which name the new maps now, and checks that no program of N+1 and no
// other program outside generation N still uses an old map.
func (tx *remapTx) build(ctx context.Context) error {
	s := tx.s
	next, loaded, err := s.build(ctx, tx.loaders)
	if err != nil {
		return err
	}
	tx.next, tx.loaded = next, loaded
	// Recorded so that a restart after a crash from here on removes the
	// programs this build pinned.
	tx.rec.NewGen = next
	if err := tx.save(""); err != nil {
		return err
	}
	return tx.checkStale()
}

// checkStale refuses a generation N+1 with a program that still uses an
// old map: after the flip its writes would be lost. Programs of generation
// N are expected to (they serve until the flip); a program freed a moment
// ago may still be listed, so it looks again for a while.
func (tx *remapTx) checkStale() error {
	old := map[ebpf.MapID]bool{}
	for _, one := range tx.maps {
		old[ebpf.MapID(one.st.OldID)] = true
	}
	live, err := tx.s.pipe.ProgramIDs(tx.res.Previous)
	if err != nil {
		return err
	}
	serving := map[ebpf.ProgramID]bool{}
	for _, id := range live {
		serving[id] = true
	}
	fresh, err := tx.s.pipe.ProgramIDs(tx.next)
	if err != nil {
		return err
	}
	for slot, id := range fresh {
		if serving[id] {
			continue // re-inserted: not a user of the maps
		}
		if p, err := ebpf.NewProgramFromID(id); err == nil {
			stale := progUses(p, old)
			p.Close()
			if stale {
				return fmt.Errorf("the program of slot %s in generation %d still uses an old map", abi.SlotName(slot), tx.next)
			}
		}
	}
	for i := 0; ; i++ {
		users := staleUsers(old, serving)
		if len(users) == 0 {
			return nil
		}
		if i == 20 {
			return fmt.Errorf("programs %v outside the pipeline still use the old maps", users)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// staleUsers lists the kernel's programs that use one of the maps old,
// except those in serving.
func staleUsers(old map[ebpf.MapID]bool, serving map[ebpf.ProgramID]bool) []string {
	var out []string
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			return out
		}
		id = next
		if serving[id] {
			continue
		}
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		if progUses(p, old) {
			info, _ := p.Info()
			name := ""
			if info != nil {
				name = info.Name
			}
			out = append(out, fmt.Sprintf("%d (%s)", id, name))
		}
		p.Close()
	}
}

// delta carries over what changed in the old maps since the copy.
func (tx *remapTx) delta() error {
	for _, one := range tx.maps {
		st, err := one.snap.Delta(one.new, one.old, one.Convert)
		if err != nil {
			return err
		}
		one.st.Delta, one.st.DeltaGone, one.st.DeltaTook = st.Written, st.Deleted, st.Took
	}
	return nil
}

// flip records the phase and the programs, then makes N+1 live.
func (tx *remapTx) flip() error {
	s := tx.s
	s.mu.Lock()
	tx.rec.NewGen, tx.rec.Programs = tx.next, tx.loaded
	tx.rec.Versions = map[string]string{}
	for name, inst := range tx.loaders {
		tx.rec.Versions[name] = inst.Desc.Version
	}
	tx.rec.Phase = remapFlipped
	err := s.saveStateLocked()
	if err == nil {
		s.gens.flip(tx.next)
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("record the remap: %w", err)
	}
	tx.res.Generation, tx.res.Programs = tx.next, tx.loaded
	return testPause(remapFlipped)
}

// merge waits until no packet runs generation N, then merges what its
// packets wrote into the old maps since the delta pass. A failure here is
// logged: the new maps serve already, and lose at most that much.
func (tx *remapTx) merge() {
	s := tx.s
	if err := s.pipe.Settle(); err != nil {
		s.log.Warn("settle after a remap flip", "error", err)
	}
	// The new maps serve and are pinned: the users may work again (a GC
	// pass that deletes what the merge writes back costs one more pass).
	tx.resume(context.Background())
	for _, one := range tx.maps {
		merge := one.Merge
		if merge == nil {
			merge = mergeFor(one.Name)
		}
		st, err := one.snap.Merge(one.new, one.old, one.Convert, merge)
		if err != nil {
			s.log.Error("merge the old map's last writes", "map", one.Name, "error", err)
		}
		one.st.Merged, one.st.MergeTook = st.Written, st.Took
		one.snap = nil
	}
	if err := tx.save(remapMerged); err != nil {
		s.log.Error("record the remap", "error", err)
	}
}

// commit ends the remap past the flip: generation N's bank is emptied, the
// users' new programs are recorded, the supervisor's handles move to the
// new maps, the old maps are unpinned, and the paused plugins resume.
func (tx *remapTx) commit(ctx context.Context) {
	s := tx.s
	if err := s.retire(tx.res.Previous); err != nil {
		s.log.Warn("retire generation", "generation", tx.res.Previous, "error", err)
	}
	s.mu.Lock()
	for name, programs := range tx.loaded {
		if s.plugins[name].inst == tx.loaders[name] {
			s.adopt(name, tx.loaders[name], programs, tx.next)
		}
	}
	s.unpinUnused()
	for _, one := range tx.maps {
		s.useMap(one.Name, one.new)
		s.recordSize(one.Name, one.new.MaxEntries())
	}
	s.state.Remap = nil
	if err := s.saveStateLocked(); err != nil {
		s.log.Error("save state", "error", err)
	}
	s.mu.Unlock()
	for _, one := range tx.maps {
		os.Remove(s.layout.Remap(one.Name))
		one.old.Close()
		one.st.MemoryTo = memlock(one.new)
	}
	tx.resume(ctx)
	tx.stats()
}

// abort undoes a remap that failed before its flip: the pins go back, the
// new maps and programs go away, the paused plugins resume on the old maps.
func (tx *remapTx) abort(ctx context.Context, step string, cause error) error {
	s := tx.s
	if tx.swapped {
		tx.unswap()
	}
	if tx.next != 0 {
		s.dropGeneration(tx.next)
	}
	for _, one := range tx.maps {
		if one.new != nil {
			if pinnedID(s.layout.Remap(one.Name)) == one.st.NewID {
				os.Remove(s.layout.Remap(one.Name))
			}
			one.new.Close()
		}
	}
	if tx.rec != nil {
		s.mu.Lock()
		s.state.Remap = nil
		if err := s.saveStateLocked(); err != nil {
			s.log.Error("save state", "error", err)
		}
		s.mu.Unlock()
	}
	tx.resume(ctx)
	s.metrics.remapFailed(tx.plan.Reason)
	var names []string
	for _, one := range tx.maps {
		names = append(names, one.Name)
	}
	err := fmt.Errorf("%s %v failed at %s, the old maps still serve (generation %d): %w", tx.plan.Reason, names, step, s.gens.Active(), cause)
	s.log.Warn("remap failed", "maps", names, "step", step, "error", cause)
	return err
}

// resume activates the paused plugins again; they open the pins.
func (tx *remapTx) resume(ctx context.Context) {
	s := tx.s
	if tx.paused == nil {
		return
	}
	for _, name := range tx.paused {
		if err := s.activate(context.WithoutCancel(ctx), name); err != nil {
			s.log.Error("activate plugin after a remap", "plugin", name, "error", err)
		}
	}
	if !tx.pauseAt.IsZero() {
		tx.res.Pause = time.Since(tx.pauseAt)
	}
	tx.paused = nil
}

func (tx *remapTx) stats() {
	for i, one := range tx.maps {
		tx.res.Maps[i] = *one.st
	}
}

// save records the transaction with phase (if not "").
func (tx *remapTx) save(phase string) error {
	s := tx.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if phase != "" {
		tx.rec.Phase = phase
	}
	s.state.Remap = tx.rec
	if err := s.saveStateLocked(); err != nil {
		return fmt.Errorf("record the remap: %w", err)
	}
	return nil
}

// useMap makes m the supervisor's handle of shared map name (status,
// metrics, auto-grow). Callers hold mu.
func (s *Supervisor) useMap(name string, m *ebpf.Map) {
	s.maps.ByName[name] = m
	s.maps.IDs[name] = mapID(m)
	if s.metrics != nil {
		s.metrics.mapChanged(name, m)
	}
}

// testPause stops a remap after phase for HOTPATH_REMAP_PAUSE=phase: the
// crash tests kill the supervisor there. Never set outside tests.
func testPause(phase string) error {
	if os.Getenv("HOTPATH_REMAP_PAUSE") == phase {
		time.Sleep(60 * time.Second)
	}
	return nil
}

// resolveRemap ends a remap a dead supervisor left in flight, before the
// maps are opened: before the flip it is undone (the pins go back, the new
// maps and the new generation's programs are dropped); after the flip it is
// finished: the old maps' last writes are merged without the lost snapshot,
// the new sizes recorded and the old maps unpinned here, the new programs
// recorded and generation N's bank emptied by finishRemap once the
// pipeline is open. The live generation, read from the pinned config map,
// says which side of the flip the dead process was on.
func (s *Supervisor) resolveRemap() error {
	r := s.state.Remap
	if r == nil {
		os.RemoveAll(s.layout.RemapDir()) // pins of a remap never recorded
		return nil
	}
	active := pinnedActive(s.layout)
	flipped := r.NewGen != 0 && active == r.NewGen
	if flipped && r.Phase != remapFlipped && r.Phase != remapMerged {
		return fmt.Errorf("remap recorded in phase %s with its generation %d live: cannot tell how to end it", r.Phase, r.NewGen)
	}
	if flipped {
		for _, rm := range r.Maps {
			if id := pinnedID(s.layout.Shared(rm.Name)); id != rm.NewID {
				return fmt.Errorf("remap of %s recorded as flipped, but its pin names map %d, not the new map %d", rm.Name, id, rm.NewID)
			}
			if r.Phase == remapFlipped {
				if err := s.recoverMerge(rm); err != nil {
					s.log.Error("merge the old map's last writes", "map", rm.Name, "error", err)
				}
			}
			s.recordSize(rm.Name, rm.To)
			os.Remove(s.layout.Remap(rm.Name))
		}
		s.remapLeft = r
		return nil
	}
	for _, rm := range r.Maps {
		if pinnedID(s.layout.Shared(rm.Name)) == rm.NewID {
			if err := exchange(s.layout.Shared(rm.Name), s.layout.Remap(rm.Name)); err != nil {
				return fmt.Errorf("put back the pin of %s: %w", rm.Name, err)
			}
		}
		if pinnedID(s.layout.Remap(rm.Name)) == rm.NewID {
			os.Remove(s.layout.Remap(rm.Name))
		}
	}
	if r.NewGen != 0 {
		for name, ps := range s.state.Plugins {
			if ps.Generation != r.NewGen {
				os.RemoveAll(s.layout.Plugin(name, r.NewGen))
			}
		}
	}
	s.log.Warn("undid a map remap interrupted before its flip", "reason", r.Reason, "phase", r.Phase)
	s.state.Remap = nil
	return s.state.Save(s.cfg.StateDir)
}

// finishRemap is the rest of finishing a remap past its flip, once the
// pipeline is open: the users' new programs are theirs, generation N's
// bank is emptied.
func (s *Supervisor) finishRemap() error {
	r := s.remapLeft
	if r == nil {
		return nil
	}
	s.remapLeft = nil
	for name, programs := range r.Programs {
		ps := s.state.Plugins[name]
		if ps == nil {
			continue
		}
		stale := s.gens.of(name)
		ps.Programs = programs
		if v := r.Versions[name]; v != "" {
			ps.Version = v
		}
		s.gens.set(name, r.NewGen)
		if stale != 0 && stale != r.NewGen {
			os.RemoveAll(s.layout.Plugin(name, stale))
		}
	}
	if r.OldGen != 0 && r.OldGen != r.NewGen {
		if err := s.pipe.Settle(); err != nil {
			return err
		}
		if err := s.pipe.Release(r.OldGen); err != nil {
			s.log.Warn("release generation", "generation", r.OldGen, "error", err)
		}
	}
	s.log.Warn("finished a map remap interrupted after its flip", "reason", r.Reason, "phase", r.Phase, "generation", r.NewGen)
	s.state.Remap = nil
	return s.saveStateLocked()
}

// pinnedActive reads the live generation from the pinned config map (0:
// none pinned yet).
func pinnedActive(l pin.Layout) uint32 {
	m, err := ebpf.LoadPinnedMap(l.Map(abi.MapConfig), nil)
	if err != nil {
		return 0
	}
	defer m.Close()
	var c abi.Config
	if err := m.Lookup(uint32(0), &c); err != nil {
		return 0
	}
	return c.ActiveGen
}

// recoverMerge merges every entry of the old map into the new one by the
// map kind's rule without a baseline.
func (s *Supervisor) recoverMerge(rm RemappedMap) error {
	oldMap, err := ebpf.LoadPinnedMap(s.layout.Remap(rm.Name), nil)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	defer oldMap.Close()
	newMap, err := ebpf.LoadPinnedMap(s.layout.Shared(rm.Name), nil)
	if err != nil {
		return err
	}
	defer newMap.Close()
	if oldMap.KeySize() != newMap.KeySize() || oldMap.ValueSize() != newMap.ValueSize() {
		// A layout change: its conversion belonged to the dead process.
		return fmt.Errorf("old and new %s differ in layout; the last writes of the old generation are not merged", rm.Name)
	}
	st, err := pin.NewSnapshot(oldMap).Merge(newMap, oldMap, nil, recoverFor(rm.Name))
	s.log.Info("merged the old map after a restart", "map", rm.Name, "entries", st.Entries, "written", st.Written)
	return err
}
