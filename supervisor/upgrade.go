package supervisor

import (
	"context"
	"fmt"
	"time"

	"github.com/hotpath/hotpath/supervisor/host"
	"github.com/hotpath/hotpath/supervisor/pipeline"
	"github.com/hotpath/hotpath/core/plugin"
)

// UpgradeRequest is the body of POST /v1/plugins/{name}/upgrade.
type UpgradeRequest struct {
	Binary       string        `json:"binary"`
	SHA256       string        `json:"sha256,omitempty"`
	HealthWindow time.Duration `json:"health_window"`
}

// UpgradeResult reports one upgrade, successful or rolled back.
type UpgradeResult struct {
	Plugin       string        `json:"plugin"`
	From         string        `json:"from_version"`
	To           string        `json:"to_version"`
	Generation   uint32        `json:"generation"`
	Previous     uint32        `json:"previous_generation"`
	Duration     time.Duration `json:"duration_ns"`
	FlipToPacket time.Duration `json:"flip_to_first_packet_ns"` // 0: no packet within the window
	RolledBack   bool          `json:"rolled_back"`
	Reason       string        `json:"reason,omitempty"`
	OldPid       int           `json:"old_pid"`
	NewPid       int           `json:"new_pid"`
}

// UpgradeState is persisted while an upgrade is in flight, so a supervisor
// that dies mid-upgrade can finish it one way or the other on restart.
type UpgradeState struct {
	Plugin   string         `json:"plugin"`
	OldGen   uint32         `json:"old_generation"`
	NewGen   uint32         `json:"new_generation"`
	Binary   string         `json:"binary"`
	New      *host.Reattach `json:"new,omitempty"`
	Old      *host.Reattach `json:"old,omitempty"`
	Phase    string         `json:"phase"` // starting, flipped, committed
	Programs map[string]string
}

const defaultHealthWindow = 3 * time.Second

// Upgrade replaces plugin name's binary while traffic flows: the new
// instance starts beside the old one, passes the compatibility check, loads
// into generation N+1, which one flip makes live; then a health gate, the GC
// lease handed from old to new (never both), and the old instance stops. A
// failure before the flip leaves N untouched; a crash or unhealthy report
// inside the window flips back to N and keeps the old instance.
func (s *Supervisor) Upgrade(ctx context.Context, name string, req UpgradeRequest) (*UpgradeResult, error) {
	s.upgradeMu.Lock()
	defer s.upgradeMu.Unlock()
	start := time.Now()
	window := req.HealthWindow
	if window <= 0 {
		window = defaultHealthWindow
	}
	s.mu.Lock()
	m, ok := s.plugins[name]
	if !ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("upgrade: no plugin %q", name)
	}
	old := m.inst
	spec := s.spec(PluginConfig{Name: name, Path: req.Binary, SHA256: req.SHA256, Config: m.cfg.Config})
	s.mu.Unlock()
	res := &UpgradeResult{Plugin: name, From: old.Desc.Version, OldPid: old.Pid}

	inst, err := host.Start(ctx, spec, s.log.Named(name))
	if err != nil {
		return s.refused(res, err)
	}
	res.To, res.NewPid = inst.Desc.Version, inst.Pid

	s.mu.Lock()
	if err := s.checkPlugin(inst.Desc, s.claimedExcept(name)); err != nil {
		s.mu.Unlock()
		inst.Kill()
		return s.refused(res, err)
	}
	m.upgrading = true
	res.Previous = s.pipe.Active()
	r := inst.Reattach
	s.state.Upgrade = &UpgradeState{Plugin: name, OldGen: res.Previous, Binary: req.Binary, New: &r, Old: s.state.Plugins[name].Reattach, Phase: "starting"}
	s.saveStateLocked()
	next, loaded, err := s.build(ctx, map[string]*host.Instance{name: inst})
	if err != nil {
		s.endUpgradeLocked(m)
		s.mu.Unlock()
		inst.Kill()
		return s.refused(res, err)
	}
	res.Generation = next
	s.state.Upgrade.NewGen, s.state.Upgrade.Phase, s.state.Upgrade.Programs = next, "flipped", loaded[name]
	s.saveStateLocked()
	flipped := pipeline.Monotonic()
	s.pipe.Flip(next)
	s.mu.Unlock()
	s.log.Info("upgrade flipped", "plugin", name, "from", res.From, "to", res.To, "generation", next)

	// Background work without the lease: a plugin that fails at work shows
	// it here, before it owns anything.
	act := &plugin.ActivateRequest{Generation: next, BPFFS: s.cfg.BPFFS, StateDir: s.cfg.StateDir, Config: m.cfg.Config}
	if err := inst.Datapath.Activate(ctx, act); err != nil {
		return s.rollback(res, m, inst, next, fmt.Sprintf("activate: %v", err))
	}
	if reason := s.healthGate(ctx, inst, window); reason != "" {
		return s.rollback(res, m, inst, next, reason)
	}
	if first := s.pipe.FirstPacket(next); first != 0 {
		res.FlipToPacket = first - flipped
	}
	if err := s.commit(ctx, name, m, old, inst, req, loaded[name], next, res.Previous); err != nil {
		return res, err
	}
	res.Duration = time.Since(start)
	s.metrics.upgraded(res)
	s.log.Info("upgrade done", "plugin", name, "version", res.To, "generation", next, "took", res.Duration, "flip_to_first_packet", res.FlipToPacket)
	return res, nil
}

// healthGate watches the new instance for window; it returns why it failed,
// or "" when it stayed up and healthy.
func (s *Supervisor) healthGate(ctx context.Context, inst *host.Instance, window time.Duration) string {
	deadline := time.Now().Add(window)
	for {
		if inst.Exited() {
			return "new instance exited during the health window"
		}
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		h, err := inst.Datapath.Health(hctx)
		cancel()
		switch {
		case inst.Exited():
			return "new instance exited during the health window"
		case err != nil:
			return fmt.Sprintf("health check: %v", err)
		case !h.Healthy:
			return fmt.Sprintf("new instance unhealthy: %s", h.Reason)
		}
		if time.Now().After(deadline) {
			return ""
		}
		select {
		case <-ctx.Done():
			return "upgrade cancelled"
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// commit hands the GC lease from old to new, records the new instance and
// binary, stops the old instance and empties the old generation's bank.
func (s *Supervisor) commit(ctx context.Context, name string, m *managed, old, inst *host.Instance, req UpgradeRequest, programs map[string]string, next, prev uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.Upgrade.Phase = "committed"
	s.saveStateLocked()
	if m.lease {
		if err := old.Datapath.Deactivate(ctx); err != nil {
			s.log.Warn("revoke gc lease of the old instance", "plugin", name, "error", err)
		}
		m.lease = false
	}
	m.inst = inst
	m.cfg.Path, m.cfg.SHA256 = req.Binary, req.SHA256
	if err := s.activate(ctx, name); err != nil {
		s.log.Error("grant gc lease to the new instance", "plugin", name, "error", err)
	}
	s.adopt(name, inst, programs, next)
	s.recordInstance(name)
	old.Kill()
	if err := s.retire(prev); err != nil {
		s.log.Warn("retire generation", "generation", prev, "error", err)
	}
	s.unpinUnused()
	s.endUpgradeLocked(m)
	return nil
}

// rollback flips back to the previous generation and keeps the old instance.
func (s *Supervisor) rollback(res *UpgradeResult, m *managed, inst *host.Instance, next uint32, reason string) (*UpgradeResult, error) {
	s.mu.Lock()
	s.pipe.Flip(res.Previous)
	if err := s.retire(next); err != nil {
		s.log.Warn("retire generation", "generation", next, "error", err)
	}
	s.dropGeneration(next)
	s.endUpgradeLocked(m)
	s.mu.Unlock()
	inst.Kill()
	res.RolledBack, res.Reason = true, reason
	s.metrics.rolledBack()
	s.log.Warn("upgrade rolled back", "plugin", res.Plugin, "to", res.To, "reason", reason)
	return res, fmt.Errorf("upgrade %s to %s rolled back to generation %d: %s", res.Plugin, res.To, res.Previous, reason)
}

func (s *Supervisor) refused(res *UpgradeResult, err error) (*UpgradeResult, error) {
	res.Reason = err.Error()
	s.metrics.refused()
	s.log.Warn("upgrade refused", "plugin", res.Plugin, "error", err)
	return res, fmt.Errorf("upgrade %s refused, generation %d unchanged: %w", res.Plugin, s.pipe.Active(), err)
}

func (s *Supervisor) endUpgradeLocked(m *managed) {
	m.upgrading = false
	s.state.Upgrade = nil
	s.saveStateLocked()
}

// resolveUpgrade finishes an upgrade a dead supervisor left in flight: a
// committed one keeps the new instance, anything earlier goes back to the
// old generation and the old instance. Either way one generation is active
// and one instance of the plugin runs.
func (s *Supervisor) resolveUpgrade() {
	u := s.state.Upgrade
	if u == nil {
		return
	}
	ps := s.state.Plugins[u.Plugin]
	if u.Phase == "committed" && ps != nil {
		ps.Programs, ps.Generation, ps.Reattach, ps.Path = u.Programs, u.NewGen, u.New, u.Binary
		if u.Old != nil {
			s.killStale(PluginConfig{Name: u.Plugin, Path: ps.Path}, u.Old.Pid)
		}
		s.log.Warn("finished an upgrade interrupted after commit", "plugin", u.Plugin, "generation", u.NewGen)
	} else {
		if s.pipe.Active() == u.NewGen && u.NewGen != 0 {
			s.pipe.Flip(u.OldGen)
			s.pipe.Settle()
			s.pipe.Release(u.NewGen)
		}
		if u.New != nil {
			s.killStale(PluginConfig{Name: u.Plugin, Path: u.Binary}, u.New.Pid)
		}
		s.log.Warn("rolled back an upgrade interrupted before commit", "plugin", u.Plugin, "generation", s.pipe.Active())
	}
	s.state.Upgrade = nil
	s.state.ActiveGen = s.pipe.Active()
}
