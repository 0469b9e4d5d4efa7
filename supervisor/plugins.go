package supervisor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/supervisor/host"
	"github.com/hotpath/hotpath/supervisor/pipeline"
	"github.com/hotpath/hotpath/core/plugin"
)

// managed is one configured plugin and its current process.
type managed struct {
	cfg       PluginConfig
	inst      *host.Instance
	restarts  int
	healthy   bool
	reason    string
	lease     bool
	reload    bool // its programs must be loaded again before the next flip
	upgrading bool // an upgrade owns the plugin; crash restarts wait
}

func (s *Supervisor) spec(pc PluginConfig) host.Spec {
	return host.Spec{
		Name: pc.Name, Path: pc.Path, SHA256: strings.ToLower(pc.SHA256),
		LogPath:   filepath.Join(s.logDir(), pc.Name+".log"),
		SocketDir: s.socketDir(),
		Config:    pc.Config,
	}
}

// startPlugins re-adopts every plugin a previous supervisor left running and
// starts the others. Every plugin must pass its checks before anything in the
// kernel changes.
func (s *Supervisor) startPlugins(ctx context.Context) error {
	claimed := map[string]string{}
	for _, pc := range s.cfg.Plugins {
		m := &managed{cfg: pc}
		ps := s.state.Plugins[pc.Name]
		if ps != nil && ps.Reattach != nil {
			inst, err := host.Adopt(ctx, pc.Name, pc.Config, *ps.Reattach, s.log.Named(pc.Name))
			if err == nil {
				m.inst = inst
				s.adoption.PluginsAdopted = append(s.adoption.PluginsAdopted, pc.Name)
			} else {
				s.log.Warn("re-adopt plugin", "plugin", pc.Name, "error", err)
				s.killStale(pc, ps.Reattach.Pid)
			}
			m.restarts = ps.Restarts
		}
		if m.inst == nil {
			inst, err := host.Start(ctx, s.spec(pc), s.log.Named(pc.Name))
			if err != nil {
				return err
			}
			m.inst = inst
			s.adoption.PluginsStarted = append(s.adoption.PluginsStarted, pc.Name)
		}
		s.plugins[pc.Name] = m
		if err := s.checkPlugin(m.inst.Desc, claimed); err != nil {
			return err
		}
		m.reload = !s.programsReusable(pc.Name, m.inst.Desc)
		if !m.reload {
			s.adoption.ProgramsReused = append(s.adoption.ProgramsReused, pc.Name)
		}
	}
	return nil
}

// killStale ends a plugin process a previous supervisor started when it can
// no longer be reattached, but only if /proc says it runs that plugin binary.
func (s *Supervisor) killStale(pc PluginConfig, pid int) {
	if pid <= 0 {
		return
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return
	}
	want, _ := filepath.Abs(pc.Path)
	if strings.TrimSuffix(exe, " (deleted)") != want {
		return
	}
	s.log.Warn("ending stale plugin process", "plugin", pc.Name, "pid", pid)
	syscall.Kill(pid, syscall.SIGKILL)
}

// checkPlugin is the compatibility check of a described plugin: ABI version,
// slots that exist and are not claimed twice, and every shared map it uses
// matching the pinned map.
func (s *Supervisor) checkPlugin(d *plugin.Description, claimed map[string]string) error {
	if d.ABIVersion != abi.Version {
		return fmt.Errorf("plugin %s %s: ABI version %d, supervisor speaks %d", d.Name, d.Version, d.ABIVersion, abi.Version)
	}
	for _, slot := range d.Slots {
		if _, err := abi.ParseSlot(slot); err != nil {
			return fmt.Errorf("plugin %s: %w", d.Name, err)
		}
		if other, ok := claimed[slot]; ok && other != d.Name {
			return fmt.Errorf("plugin %s: slot %s is already claimed by %s", d.Name, slot, other)
		}
		claimed[slot] = d.Name
	}
	for slot, hooks := range d.Hooks {
		if !contains(d.Slots, slot) {
			return fmt.Errorf("plugin %s: hooks given for slot %s, which it does not claim", d.Name, slot)
		}
		if _, err := pipeline.ParseHooks(hooks); err != nil {
			return fmt.Errorf("plugin %s slot %s: %w", d.Name, slot, err)
		}
	}
	return checkSchemas(d, s.maps)
}

func checkSchemas(d *plugin.Description, maps *Maps) error {
	for _, want := range d.Maps {
		m, ok := maps.ByName[want.Name]
		if !ok {
			return fmt.Errorf("plugin %s: needs shared map %s, which this supervisor does not have", d.Name, want.Name)
		}
		info, err := m.Info()
		if err != nil {
			return fmt.Errorf("plugin %s: map %s info: %w", d.Name, want.Name, err)
		}
		var diffs []string
		if want.Type != "" && want.Type != info.Type.String() {
			diffs = append(diffs, fmt.Sprintf("type %s, pinned %s", want.Type, info.Type))
		}
		if want.KeySize != info.KeySize {
			diffs = append(diffs, fmt.Sprintf("key size %d, pinned %d", want.KeySize, info.KeySize))
		}
		if want.ValueSize != info.ValueSize {
			diffs = append(diffs, fmt.Sprintf("value size %d, pinned %d", want.ValueSize, info.ValueSize))
		}
		if want.MaxEntries != 0 && want.MaxEntries != info.MaxEntries {
			diffs = append(diffs, fmt.Sprintf("max entries %d, pinned %d", want.MaxEntries, info.MaxEntries))
		}
		if len(diffs) > 0 {
			return fmt.Errorf("plugin %s %s: map schema mismatch on %s: %s", d.Name, d.Version, want.Name, strings.Join(diffs, ", "))
		}
	}
	return nil
}

// programsReusable tells whether the programs pinned for plugin name are
// those of this version and still live, so a restart changes nothing in
// the datapath.
func (s *Supervisor) programsReusable(name string, d *plugin.Description) bool {
	ps := s.state.Plugins[name]
	if ps == nil || ps.Version != d.Version || len(ps.Programs) != len(d.Slots) || s.pipe.Active() == 0 {
		return false
	}
	for _, slot := range d.Slots {
		p, ok := ps.Programs[slot]
		if !ok || !fileExists(p) {
			return false
		}
	}
	return true
}

func (s *Supervisor) activateAll(ctx context.Context) error {
	for name := range s.plugins {
		if err := s.activate(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// activate grants plugin name its GC lease (if it wants one) and starts its
// background work.
func (s *Supervisor) activate(ctx context.Context, name string) error {
	m := s.plugins[name]
	req := &plugin.ActivateRequest{
		Generation: s.pipe.Active(), BPFFS: s.cfg.BPFFS, StateDir: s.cfg.StateDir,
		Config: m.cfg.Config, GCLease: m.inst.Desc.GC,
	}
	if err := m.inst.Datapath.Activate(ctx, req); err != nil {
		return fmt.Errorf("activate plugin %s: %w", name, err)
	}
	m.lease = req.GCLease
	m.healthy = true
	return nil
}

func (s *Supervisor) deactivateAll(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, m := range s.plugins {
		if m.inst == nil || !m.lease {
			continue
		}
		if err := m.inst.Datapath.Deactivate(ctx); err != nil {
			s.log.Warn("deactivate plugin", "plugin", name, "error", err)
		}
		m.lease = false
	}
}

func (s *Supervisor) killPlugins() {
	for _, m := range s.plugins {
		if m.inst != nil {
			m.inst.Kill()
		}
	}
}

// watch restarts plugin name whenever its process ends, with backoff. The
// datapath is untouched meanwhile: its programs stay in the prog array.
func (s *Supervisor) watch(ctx context.Context, name string) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var b host.Backoff
		for {
			s.mu.Lock()
			inst := s.plugins[name].inst
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-inst.Done():
			}
			s.mu.Lock()
			stopping := s.stopping
			m := s.plugins[name]
			replaced := m.inst != inst // an upgrade or restart swapped it: watch the new one
			if !stopping && !replaced {
				if m.upgrading {
					// The upgrade decides; look again once it is over.
					s.mu.Unlock()
					time.Sleep(100 * time.Millisecond)
					continue
				}
				m.restarts++
				m.healthy, m.lease, m.reason = false, false, "process exited"
			}
			s.mu.Unlock()
			if stopping {
				return
			}
			if replaced {
				continue
			}
			s.log.Warn("plugin exited", "plugin", name, "pid", inst.Pid)
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(b.Next()):
				}
				if err := s.restart(ctx, name); err != nil {
					s.log.Error("restart plugin", "plugin", name, "error", err)
					continue
				}
				break
			}
		}
	}()
}

// restart starts a fresh instance of plugin name and re-adopts its pinned
// programs, or loads new ones if the binary changed version.
func (s *Supervisor) restart(ctx context.Context, name string) error {
	s.mu.Lock()
	m := s.plugins[name]
	pc := m.cfg
	s.mu.Unlock()
	inst, err := host.Start(ctx, s.spec(pc), s.log.Named(name))
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		inst.Kill()
		return nil
	}
	claimed := s.claimedExcept(name)
	if err := s.checkPlugin(inst.Desc, claimed); err != nil {
		inst.Kill()
		return err
	}
	m.inst = inst
	m.reload = !s.programsReusable(name, inst.Desc)
	if m.reload {
		if err := s.reconcileLocked(ctx, "restart "+name); err != nil {
			return err
		}
	}
	if err := s.activate(ctx, name); err != nil {
		return err
	}
	s.state.Plugins[name].Restarts = m.restarts
	s.recordInstance(name)
	if err := s.saveStateLocked(); err != nil {
		s.log.Error("save state", "error", err)
	}
	s.log.Info("plugin restarted", "plugin", name, "pid", inst.Pid, "restarts", m.restarts, "reloaded", m.reload)
	return nil
}

func (s *Supervisor) claimedExcept(name string) map[string]string {
	out := map[string]string{}
	for n, m := range s.plugins {
		if n == name || m.inst == nil {
			continue
		}
		for _, slot := range m.inst.Desc.Slots {
			out[slot] = n
		}
	}
	return out
}

// recordInstance stores how to reattach plugin name's current process.
func (s *Supervisor) recordInstance(name string) {
	m := s.plugins[name]
	ps := s.state.Plugins[name]
	if ps == nil {
		ps = &PluginState{}
		s.state.Plugins[name] = ps
	}
	r := m.inst.Reattach
	ps.Reattach = &r
	ps.Path = m.cfg.Path
	ps.Restarts = m.restarts
}
