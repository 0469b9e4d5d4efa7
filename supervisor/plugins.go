package supervisor

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/core/plugin"
	"github.com/hotpath/hotpath/supervisor/host"
	"github.com/hotpath/hotpath/supervisor/pipeline"
)

// managed is one configured plugin and its current process.
type managed struct {
	base      PluginConfig // as configured
	cfg       PluginConfig // what runs: base, or the binary an upgrade installed
	inst      *host.Instance
	adopted   bool // this start reattached inst rather than starting it
	restarts  int
	healthy   bool
	reason    string
	lease     bool
	reload    bool // its programs must be loaded again before the next flip
	upgrading bool // an upgrade owns the plugin; its old instance may end
	restartGC bool // adopted, but its config changed: its background work restarts with the new one
}

func (s *Supervisor) spec(pc PluginConfig) host.Spec {
	return host.Spec{
		Name: pc.Name, Path: pc.Path, SHA256: strings.ToLower(pc.SHA256),
		LogPath:   filepath.Join(s.logDir(), pc.Name+".log"),
		SocketDir: s.socketDir(),
		Config:    pc.Config,
		// Found and ended by the next supervisor if this one dies before
		// recording the process (host.OwnerEnv).
		Owner: s.cfg.StateDir,
	}
}

// effective is the plugin config to run: a completed upgrade replaced the
// configured binary, and keeps doing so until the config names another one.
func effective(pc PluginConfig, ps *PluginState) PluginConfig {
	if ps == nil || ps.Upgraded == nil {
		return pc
	}
	if ps.Upgraded.Path != pc.Path || !strings.EqualFold(ps.Upgraded.SHA256, pc.SHA256) {
		return pc // the operator configured another binary since
	}
	pc.Path, pc.SHA256 = ps.Path, ps.SHA256
	return pc
}

// startPlugins re-adopts every plugin a previous supervisor left running,
// ends the plugin processes it started but never recorded, and starts the
// others. Every plugin must pass its checks before anything in the kernel
// changes.
func (s *Supervisor) startPlugins(ctx context.Context) error {
	keep := map[int]bool{}
	for _, base := range s.cfg.Plugins {
		ps := s.state.Plugins[base.Name]
		m := &managed{base: base, cfg: effective(base, ps)}
		if ps != nil && ps.Upgraded != nil && m.cfg.Path == base.Path {
			ps.Upgraded = nil
		}
		s.plugins[base.Name] = m
		if ps == nil || ps.Reattach == nil {
			continue
		}
		m.restarts = ps.Restarts
		inst, err := host.Adopt(ctx, base.Name, m.cfg.Config, *ps.Reattach, s.log.Named(base.Name))
		if err != nil {
			s.log.Warn("re-adopt plugin", "plugin", base.Name, "error", err)
			s.killStale(base.Name, *ps.Reattach, m.cfg.Path)
			continue
		}
		m.inst, m.adopted = inst, true
		m.restartGC = ps.ConfigSHA != configSHA(m.cfg.Config)
		keep[inst.Pid] = true
		s.adoption.PluginsAdopted = append(s.adoption.PluginsAdopted, base.Name)
	}
	// Before any new instance starts: an unrecorded one may hold a lease.
	host.EndOrphans(s.cfg.StateDir, keep, s.log)
	claimed := map[string]string{}
	for _, base := range s.cfg.Plugins {
		m := s.plugins[base.Name]
		if m.inst == nil {
			inst, err := host.Start(ctx, s.spec(m.cfg), s.log.Named(base.Name))
			if err != nil {
				return err
			}
			m.inst = inst
			s.adoption.PluginsStarted = append(s.adoption.PluginsStarted, base.Name)
		}
		if err := s.freshLayouts(m.inst.Desc); err != nil {
			return err
		}
		if err := s.checkPlugin(m.inst.Desc, claimed); err != nil {
			return err
		}
		m.reload = !s.programsReusable(base.Name, m.inst.Desc, m.cfg)
		if !m.reload {
			s.adoption.ProgramsReused = append(s.adoption.ProgramsReused, base.Name)
		}
	}
	return nil
}

// killStale ends a plugin process a previous supervisor started when it can
// no longer be reattached, but only if /proc says the pid still runs what it
// ran then (r.Exe; the binary path for state files from before Exe).
func (s *Supervisor) killStale(name string, r host.Reattach, path string) {
	if r.Pid <= 0 {
		return
	}
	exe, err := host.Exe(r.Pid)
	if err != nil {
		return
	}
	want := r.Exe
	if want == "" {
		want, _ = filepath.Abs(path)
	}
	if exe != want {
		return
	}
	s.log.Warn("ending stale plugin process", "plugin", name, "pid", r.Pid, "exe", exe)
	syscall.Kill(r.Pid, syscall.SIGKILL)
}

// checkPlugin is the compatibility check of a described plugin: ABI version,
// slots that exist and are not claimed twice, and every shared map it uses
// matching the pinned map.
func (s *Supervisor) checkPlugin(d *plugin.Description, claimed map[string]string) error {
	return s.checkPluginFor(d, claimed, false)
}

// checkPluginFor is checkPlugin; with migrate, a declared map layout other
// than the pinned one passes (an upgrade migrates the map).
func (s *Supervisor) checkPluginFor(d *plugin.Description, claimed map[string]string, migrate bool) error {
	if d.ABIVersion != abi.Version {
		return fmt.Errorf("plugin %s %s: ABI version %d, supervisor speaks %d", d.Name, d.Version, d.ABIVersion, abi.Version)
	}
	for _, slot := range d.Slots {
		if _, err := abi.ParseSlot(slot); err != nil {
			return fmt.Errorf("plugin %s: %w", d.Name, err)
		}
		if slot == slotForward {
			return fmt.Errorf("plugin %s: slot %s is the supervisor's", d.Name, slot)
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
	return checkSchemas(d, s.maps, migrate)
}

// checkSchemas compares what d expects of each shared map with the pinned
// map. A plugin of MinorMapVersions or later reads a versioned map at any
// layout unless it declares one (it owns the map); a declared layout other
// than the pinned one is an error unless migrate (an upgrade migrates it).
func checkSchemas(d *plugin.Description, maps *Maps, migrate bool) error {
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
		switch {
		case pin.Versioned(want.Name) && d.ProtocolMinor >= plugin.MinorMapVersions:
			diffs = append(diffs, layoutDiffs(want, pin.LayoutOf(want.Name, m), migrate)...)
		case want.ValueSize != info.ValueSize:
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

// layoutDiffs checks a versioned map's declared layout against the pinned
// one, pinned.
func layoutDiffs(want plugin.MapSchema, pinned uint32, migrate bool) []string {
	if want.Version == 0 {
		return nil // a reader: its loader fits the programs to any layout
	}
	if want.Version > pin.Versions(want.Name) {
		return []string{fmt.Sprintf("layout %d, which this supervisor does not know (it knows 1..%d)", want.Version, pin.Versions(want.Name))}
	}
	if size := pin.LayoutSize(want.Name, want.Version); want.ValueSize != 0 && want.ValueSize != size {
		return []string{fmt.Sprintf("value size %d, layout %d has %d", want.ValueSize, want.Version, size)}
	}
	if want.Version != pinned && !migrate {
		return []string{fmt.Sprintf("layout %d, pinned %d (only `hotpath plugin upgrade` migrates a map)", want.Version, pinned)}
	}
	return nil
}

// programsReusable tells whether the programs pinned for plugin name are
// those this version loads with this config, and still live, so a restart
// changes nothing in the datapath. Another config (CT lifetimes, a Maglev
// seed) is compiled into the programs: they must be loaded again.
func (s *Supervisor) programsReusable(name string, d *plugin.Description, pc PluginConfig) bool {
	ps := s.state.Plugins[name]
	if ps == nil || ps.Version != d.Version || len(ps.Programs) != len(d.Slots) || s.gens.Active() == 0 {
		return false
	}
	if ps.ConfigSHA != configSHA(pc.Config) {
		s.log.Info("plugin config changed, loading its programs again", "plugin", name)
		return false
	}
	if ps.CgroupPath != "" && ps.CgroupPath != s.cfg.Cgroup {
		s.log.Info("cgroup changed, loading the plugin's programs again", "plugin", name, "cgroup", s.cfg.Cgroup)
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
	s.mu.Lock()
	names := make([]string, 0, len(s.plugins))
	var reconfigure []*host.Instance
	for name, m := range s.plugins {
		names = append(names, name)
		if m.restartGC {
			reconfigure = append(reconfigure, m.inst)
		}
	}
	s.mu.Unlock()
	// An adopted instance keeps the background work it was activated
	// with; stop it so that Activate starts it with the new config.
	for _, inst := range reconfigure {
		rctx, cancel := rpcContext(ctx, deactivateTimeout)
		err := inst.Datapath.Deactivate(rctx)
		cancel()
		if err != nil {
			return fmt.Errorf("deactivate plugin %s for its new config: %w", inst.Name, err)
		}
	}
	for _, name := range names {
		if err := s.activate(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// activate grants plugin name's current instance its GC lease (if it wants
// one) and starts its background work.
func (s *Supervisor) activate(ctx context.Context, name string) error {
	s.mu.Lock()
	m := s.plugins[name]
	inst := m.inst
	req := &plugin.ActivateRequest{
		Generation: s.gens.Active(), BPFFS: s.cfg.BPFFS, StateDir: s.cfg.StateDir,
		Config: m.cfg.Config, GCLease: inst.Desc.GC,
	}
	s.mu.Unlock()
	rctx, cancel := rpcContext(ctx, activateTimeout)
	defer cancel()
	if err := inst.Datapath.Activate(rctx, req); err != nil {
		return fmt.Errorf("activate plugin %s: %w", name, err)
	}
	s.mu.Lock()
	if m.inst == inst {
		m.lease = req.GCLease
		m.healthy = true
	}
	s.mu.Unlock()
	return nil
}

// deactivateAll revokes every lease, each call bounded by ctx.
func (s *Supervisor) deactivateAll(ctx context.Context) {
	s.mu.Lock()
	holders := map[string]*host.Instance{}
	for name, m := range s.plugins {
		if m.inst != nil && m.lease {
			holders[name] = m.inst
			m.lease = false
		}
	}
	s.mu.Unlock()
	for name, inst := range holders {
		if err := inst.Datapath.Deactivate(ctx); err != nil {
			s.log.Warn("deactivate plugin", "plugin", name, "error", err)
		}
	}
}

func (s *Supervisor) killPlugins() {
	s.mu.Lock()
	var insts []*host.Instance
	for _, m := range s.plugins {
		if m.inst != nil {
			insts = append(insts, m.inst)
		}
	}
	s.mu.Unlock()
	for _, inst := range insts {
		inst.Kill()
	}
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

// recordInstance stores how to reattach plugin name's current process and
// which binary it runs. Callers hold mu.
func (s *Supervisor) recordInstance(name string) {
	m := s.plugins[name]
	ps := s.state.Plugins[name]
	if ps == nil {
		ps = &PluginState{}
		s.state.Plugins[name] = ps
	}
	r := m.inst.Reattach
	ps.Reattach = &r
	ps.Path, ps.SHA256 = m.cfg.Path, strings.ToLower(m.cfg.SHA256)
	ps.Restarts = m.restarts
}
