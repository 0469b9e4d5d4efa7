package supervisor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/plugin"
	"github.com/hotpath/hotpath/supervisor/host"
	"github.com/hotpath/hotpath/supervisor/pipeline"
)

// reconcile builds the next generation when a plugin needs its programs
// loaded: plugins marked reload load into generation N+1, every other plugin
// re-inserts its current programs, then one flip makes N+1 live, a grace
// period passes, and N's bank is emptied. Any failure before the flip leaves
// generation N untouched. It runs on the change goroutine (or in Start,
// before there is one).
func (s *Supervisor) reconcile(ctx context.Context, why string) error {
	s.mu.Lock()
	loaders := map[string]*host.Instance{}
	for name, m := range s.plugins {
		if m.reload {
			loaders[name] = m.inst
		}
	}
	old := s.gens.Active()
	s.mu.Unlock()
	if len(loaders) == 0 && old != 0 {
		return nil
	}
	next, loaded, err := s.build(ctx, loaders)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.gens.flip(next)
	s.mu.Unlock()
	if err := s.retire(old); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, programs := range loaded {
		s.adopt(name, loaders[name], programs, next)
		s.plugins[name].reload = false
	}
	s.unpinUnused()
	if err := s.saveStateLocked(); err != nil {
		return err
	}
	s.log.Info("generation live", "generation", next, "previous", old, "why", why)
	return nil
}

// build prepares generation N+1 without making it live: each plugin in
// loaders loads its programs through that instance, every other plugin's
// current programs are re-inserted. On error nothing live has changed.
func (s *Supervisor) build(ctx context.Context, loaders map[string]*host.Instance) (uint32, map[string]map[string]string, error) {
	s.mu.Lock()
	next := s.gens.allocate()
	// Builds run one at a time: an older build's cgroup programs were
	// adopted or abandoned by now.
	s.cgroupLoaded = map[uint32]map[string]map[string]string{}
	configs := map[string][]byte{}
	for name := range loaders {
		configs[name] = s.plugins[name].cfg.Config
	}
	s.mu.Unlock()
	loaded := map[string]map[string]string{}
	cgroup := map[string]map[string]string{}
	for name, inst := range loaders {
		rctx, cancel := rpcContext(ctx, loadTimeout)
		resp, err := inst.Datapath.Load(rctx, &plugin.LoadRequest{Generation: next, BPFFS: s.cfg.BPFFS, Config: configs[name]})
		cancel()
		if err != nil {
			s.dropGeneration(next)
			return 0, nil, fmt.Errorf("load plugin %s %s into generation %d: %w", name, inst.Desc.Version, next, err)
		}
		err = sameSlots(inst.Desc, resp)
		if err == nil {
			err = s.checkCgroup(resp)
		}
		if err != nil {
			s.dropGeneration(next)
			return 0, nil, fmt.Errorf("load plugin %s %s: %w", name, inst.Desc.Version, err)
		}
		loaded[name] = resp.Programs
		cgroup[name] = resp.Cgroup
	}
	s.mu.Lock()
	s.cgroupLoaded[next] = cgroup
	descs := map[string]*plugin.Description{}
	for name, m := range s.plugins {
		descs[name] = m.inst.Desc
		if inst, ok := loaders[name]; ok {
			descs[name] = inst.Desc
		}
	}
	progs, hooks, err := s.collect(loaded, descs)
	s.mu.Unlock()
	if err != nil {
		s.dropGeneration(next)
		return 0, nil, err
	}
	defer closePrograms(progs)
	// The bank of N+1 was last live 16 generations ago; wait out any packet
	// that could still be in it before rewriting it.
	if err := s.pipe.Settle(); err != nil {
		s.dropGeneration(next)
		return 0, nil, err
	}
	if err := s.pipe.PrepareHooks(next, progs, hooks); err != nil {
		s.dropGeneration(next)
		return 0, nil, err
	}
	return next, loaded, nil
}

// retire waits until no packet runs generation old any more and empties its bank.
func (s *Supervisor) retire(old uint32) error {
	if err := s.pipe.Settle(); err != nil {
		return err
	}
	if old == 0 {
		return nil
	}
	if err := s.pipe.Release(old); err != nil {
		s.log.Warn("release generation", "generation", old, "error", err)
	}
	return nil
}

// adopt records that plugin name's programs for generation gen are live.
// Callers hold mu.
func (s *Supervisor) adopt(name string, inst *host.Instance, programs map[string]string, gen uint32) {
	ps := s.state.Plugins[name]
	ps.Programs, ps.Version = programs, inst.Desc.Version
	ps.ConfigSHA = configSHA(s.plugins[name].cfg.Config)
	s.gens.set(name, gen)
	if loaded, ok := s.cgroupLoaded[gen]; ok {
		// A failure here comes after the flip: the stages are live, the
		// previous cgroup programs (if any) stay attached.
		if err := s.syncCgroup(name, loaded[name]); err != nil {
			s.log.Error("cgroup programs", "plugin", name, "generation", gen, "error", err)
		}
	}
}

// sameSlots checks a Load answer covers exactly the slots Describe claimed.
func sameSlots(d *plugin.Description, resp *plugin.LoadResponse) error {
	if len(resp.Programs) != len(d.Slots) {
		return fmt.Errorf("loaded %d programs for %d claimed slots", len(resp.Programs), len(d.Slots))
	}
	for _, slot := range d.Slots {
		if _, ok := resp.Programs[slot]; !ok {
			return fmt.Errorf("no program for claimed slot %s", slot)
		}
	}
	return nil
}

// collect opens the program of every slot of the next generation: fresh
// loads from `loaded`, the current pins of every other plugin; and the hooks
// each slot runs at, as its plugin declared them. Callers hold mu.
func (s *Supervisor) collect(loaded map[string]map[string]string, descs map[string]*plugin.Description) (map[abi.Slot]*ebpf.Program, map[abi.Slot]pipeline.Hooks, error) {
	out := map[abi.Slot]*ebpf.Program{}
	hooks := map[abi.Slot]pipeline.Hooks{}
	for name := range s.plugins {
		pins := loaded[name]
		if pins == nil {
			pins = s.state.Plugins[name].Programs
		}
		for slotName, path := range pins {
			slot, err := abi.ParseSlot(slotName)
			if err != nil {
				closePrograms(out)
				return nil, nil, fmt.Errorf("plugin %s: %w", name, err)
			}
			h, err := pipeline.ParseHooks(descs[name].Hooks[slotName])
			if err != nil {
				closePrograms(out)
				return nil, nil, fmt.Errorf("plugin %s slot %s: %w", name, slotName, err)
			}
			prog, err := ebpf.LoadPinnedProgram(path, nil)
			if err != nil {
				closePrograms(out)
				return nil, nil, fmt.Errorf("open program of plugin %s slot %s: %w", name, slotName, err)
			}
			out[slot], hooks[slot] = prog, h
		}
	}
	if err := s.addForward(out, hooks); err != nil {
		closePrograms(out)
		return nil, nil, err
	}
	return out, hooks, nil
}

func closePrograms(ps map[abi.Slot]*ebpf.Program) {
	for _, p := range ps {
		p.Close()
	}
}

// dropGeneration removes pins a failed build left for generation gen.
func (s *Supervisor) dropGeneration(gen uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name := range s.plugins {
		if p := s.layout.Plugin(name, gen); !s.pinned(p) {
			os.RemoveAll(p)
		}
	}
}

// pinned tells whether a plugin generation dir holds programs still in use.
func (s *Supervisor) pinned(dir string) bool {
	for _, ps := range s.state.Plugins {
		for _, p := range ps.Programs {
			if filepath.Dir(p) == dir {
				return true
			}
		}
	}
	return false
}

// unpinUnused removes program pins of generations no plugin uses any more;
// the prog array bank was emptied already, so the programs are freed.
// Callers hold mu.
func (s *Supervisor) unpinUnused() {
	keep := map[string]bool{}
	for _, ps := range s.state.Plugins {
		for _, p := range ps.Programs {
			keep[filepath.Dir(p)] = true
		}
	}
	if r := s.state.Remap; r != nil {
		// A remap in an upgrade loads the new instance's programs, which
		// the upgrade adopts only at its commit.
		for _, programs := range r.Programs {
			for _, p := range programs {
				keep[filepath.Dir(p)] = true
			}
		}
	}
	for name := range s.plugins {
		dirs, _ := filepath.Glob(filepath.Join(s.cfg.BPFFS, "plugins", name, "[0-9]*"))
		sort.Strings(dirs)
		for _, d := range dirs {
			if !keep[d] {
				os.RemoveAll(d)
			}
		}
	}
}
