package supervisor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hotpath/hotpath/core/plugin"
	"github.com/hotpath/hotpath/supervisor/host"
	"github.com/hotpath/hotpath/supervisor/pipeline"
)

// upgradeTx is one upgrade of one plugin as a transaction: prepare (start
// the new binary beside the old, check it, load it into generation N+1),
// flip (N+1 live), gate (the new instance works and stays healthy for the
// window, without the lease), handoff (the GC lease moves from the old
// instance to the new), then commit (the new instance is the plugin) or
// rollback (N live again, the old instance keeps or gets back the lease).
// Its phase is persisted before each step takes effect, so a supervisor
// that dies midway finishes it one way or the other on restart
// (resolveUpgrade). The commit point is the save of phaseCommitted.
type upgradeTx struct {
	s    *Supervisor
	name string
	req  UpgradeRequest
	m    *managed
	old  *host.Instance
	inst *host.Instance // the new instance, once started
	next uint32
	u    *UpgradeState // the persisted record
	res  *UpgradeResult

	programs map[string]string
	migs     []Migration   // layout changes of the maps the plugin owns
	migrated bool          // the maps were migrated up: a rollback migrates them back
	flipped  time.Duration // CLOCK_MONOTONIC at the flip
	revoked  bool          // the old instance gave up its lease
	granted  bool          // the new instance holds the lease
}

func (s *Supervisor) beginUpgrade(name string, req UpgradeRequest) (*upgradeTx, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.plugins[name]
	if !ok {
		return nil, fmt.Errorf("upgrade: no plugin %q", name)
	}
	old := m.inst
	return &upgradeTx{s: s, name: name, req: req, m: m, old: old,
		res: &UpgradeResult{Plugin: name, From: old.Desc.Version, OldPid: old.Pid}}, nil
}

// prepare starts and checks the new instance and builds generation N+1.
func (tx *upgradeTx) prepare(ctx context.Context) error {
	s := tx.s
	spec := s.spec(PluginConfig{Name: tx.name, Path: tx.req.Binary, SHA256: tx.req.SHA256, Config: tx.m.cfg.Config})
	inst, err := host.Start(ctx, spec, s.log.Named(tx.name))
	if err != nil {
		return err
	}
	tx.res.To, tx.res.NewPid = inst.Desc.Version, inst.Pid
	s.mu.Lock()
	err = s.checkPluginFor(inst.Desc, s.claimedExcept(tx.name), true)
	if err == nil {
		tx.migs, err = s.migrations(inst.Desc)
	}
	if err == nil {
		tx.inst = inst
		tx.m.upgrading = true
		tx.res.Previous = s.gens.Active()
		r := inst.Reattach
		tx.u = &UpgradeState{
			Plugin: tx.name, OldGen: tx.res.Previous, Binary: tx.req.Binary, SHA256: strings.ToLower(tx.req.SHA256),
			To: inst.Desc.Version, New: &r, Old: s.state.Plugins[tx.name].Reattach,
			OldBinary:  &Binary{Path: tx.m.cfg.Path, SHA256: tx.m.cfg.SHA256},
			Configured: &Binary{Path: tx.m.base.Path, SHA256: tx.m.base.SHA256},
			Phase:      phaseStarting, Migrations: tx.migs,
		}
		s.state.Upgrade = tx.u
		if err = s.saveStateLocked(); err != nil {
			err = fmt.Errorf("record upgrade: %w", err)
		}
	}
	s.mu.Unlock()
	if err != nil {
		tx.end()
		inst.Kill()
		return err
	}
	if len(tx.migs) > 0 {
		// Checked now, before anything changes: a conversion that cannot
		// apply refuses the upgrade. The migration itself is the flip.
		if _, err := s.migrationPlan(tx.migs, false, inst, tx.old); err != nil {
			tx.end()
			inst.Kill()
			return err
		}
		tx.res.Migrations = tx.migs
		return nil
	}
	next, loaded, err := s.build(ctx, map[string]*host.Instance{tx.name: inst})
	if err != nil {
		tx.end()
		inst.Kill()
		return err
	}
	tx.next, tx.programs = next, loaded[tx.name]
	tx.res.Generation = next
	return nil
}

// migrate is the flip of an upgrade that changes map layouts: a remap
// (remap.go) creates the maps in the new layout, copies and converts every
// entry, loads every plugin using them into generation N+1 (the upgraded
// plugin through its new instance) and flips to it. A failure leaves the
// old maps and generation N serving, and the upgrade is refused.
func (tx *upgradeTx) migrate(ctx context.Context) error {
	s := tx.s
	plan, err := s.migrationPlan(tx.migs, false, tx.inst, tx.old)
	if err == nil {
		s.mu.Lock()
		tx.u.Phase = phaseMigrating
		err = s.saveStateLocked()
		s.mu.Unlock()
	}
	if err == nil {
		var res *RemapResult
		res, err = s.remap(ctx, RemapPlan{Maps: plan, Reason: "upgrade", Loaders: map[string]*host.Instance{tx.name: tx.inst}})
		if err == nil {
			tx.migrated, tx.next, tx.programs = true, res.Generation, res.Programs[tx.name]
			tx.res.Generation, tx.res.Previous, tx.res.Migrations = res.Generation, res.Previous, tx.migs
			tx.flipped = pipeline.Monotonic()
		}
	}
	if err != nil {
		tx.end()
		tx.inst.Kill()
		tx.res.Generation = 0
		return fmt.Errorf("migrate %s: %w", migrationNames(tx.migs), err)
	}
	s.mu.Lock()
	tx.u.NewGen, tx.u.Phase, tx.u.Programs = tx.next, phaseFlipped, tx.programs
	err = s.saveStateLocked()
	s.mu.Unlock()
	if err != nil {
		s.log.Error("record upgrade", "error", err)
	}
	s.log.Info("maps migrated", "plugin", tx.name, "migrations", migrationNames(tx.migs), "generation", tx.next)
	return nil
}

// migrateBack is the flip back of a rollback after migrate: the maps are
// migrated down to the layouts they had, with the old instance loading the
// plugin's programs into a new generation. The new instance ends first: a
// program of its own may still hold the new maps.
func (tx *upgradeTx) migrateBack(ctx context.Context) error {
	s := tx.s
	tx.inst.Kill()
	// Converted by field names, or by the old build if it knows both
	// layouts (a rolled back downgrade): the new build is gone.
	plan, err := s.migrationPlan(tx.migs, true, tx.old)
	if err != nil {
		return err
	}
	res, err := s.remap(context.WithoutCancel(ctx), RemapPlan{Maps: plan, Reason: "upgrade rollback", Loaders: map[string]*host.Instance{tx.name: tx.old}})
	if err != nil {
		return err
	}
	s.mu.Lock()
	if programs := res.Programs[tx.name]; programs != nil && tx.m.inst == tx.old {
		s.adopt(tx.name, tx.old, programs, res.Generation)
		if err := s.saveStateLocked(); err != nil {
			s.log.Error("save state", "error", err)
		}
	}
	s.mu.Unlock()
	tx.res.Previous = res.Generation
	return nil
}

// flip records the phase, then makes N+1 live.
func (tx *upgradeTx) flip() error {
	s := tx.s
	s.mu.Lock()
	tx.u.NewGen, tx.u.Phase, tx.u.Programs = tx.next, phaseFlipped, tx.programs
	err := s.saveStateLocked()
	if err == nil {
		tx.flipped = pipeline.Monotonic()
		s.gens.flip(tx.next)
	}
	s.mu.Unlock()
	if err != nil {
		s.dropGeneration(tx.next)
		tx.end()
		tx.inst.Kill()
		tx.res.Generation = 0
		return fmt.Errorf("record upgrade: %w", err)
	}
	return nil
}

// gate starts the new instance's background work without the lease, so a
// plugin that fails at work shows it before it owns anything, then watches
// its health for window. It returns why it failed, or "".
func (tx *upgradeTx) gate(ctx context.Context, window time.Duration) string {
	s := tx.s
	act := &plugin.ActivateRequest{Generation: tx.next, BPFFS: s.cfg.BPFFS, StateDir: s.cfg.StateDir, Config: tx.m.cfg.Config}
	rctx, cancel := rpcContext(ctx, activateTimeout)
	err := tx.inst.Datapath.Activate(rctx, act)
	cancel()
	if err != nil {
		return fmt.Sprintf("activate: %v", err)
	}
	if reason := s.healthGate(ctx, tx.inst, window); reason != "" {
		return reason
	}
	if first := s.pipe.FirstPacket(tx.next); first != 0 {
		tx.res.FlipToPacket = first - tx.flipped
	}
	return ""
}

// handoff revokes the old instance's GC lease, then grants the new one its
// own: never both at once. A dead old instance holds nothing to revoke.
func (tx *upgradeTx) handoff(ctx context.Context) error {
	s := tx.s
	s.mu.Lock()
	held := tx.m.lease
	s.mu.Unlock()
	if held && !tx.old.Exited() {
		rctx, cancel := rpcContext(ctx, deactivateTimeout)
		err := tx.old.Datapath.Deactivate(rctx)
		cancel()
		if err != nil {
			return fmt.Errorf("revoke the lease of the old instance: %w", err)
		}
	}
	s.mu.Lock()
	tx.revoked, tx.m.lease = held, false
	s.mu.Unlock()
	if !tx.inst.Desc.GC {
		return nil
	}
	act := &plugin.ActivateRequest{Generation: tx.next, BPFFS: s.cfg.BPFFS, StateDir: s.cfg.StateDir, Config: tx.m.cfg.Config, GCLease: true}
	rctx, cancel := rpcContext(ctx, activateTimeout)
	defer cancel()
	if err := tx.inst.Datapath.Activate(rctx, act); err != nil {
		return fmt.Errorf("grant the lease to the new instance: %w", err)
	}
	tx.granted = true
	return nil
}

// commit persists the commit point, then makes the new instance the plugin
// and its binary the one that runs from now on, over restarts.
func (tx *upgradeTx) commit() error {
	s := tx.s
	s.mu.Lock()
	defer s.mu.Unlock()
	tx.u.Phase = phaseCommitted
	if err := s.saveStateLocked(); err != nil {
		tx.u.Phase = phaseFlipped
		return err
	}
	m := tx.m
	m.inst, m.lease, m.healthy, m.reason = tx.inst, tx.granted, true, ""
	m.cfg.Path, m.cfg.SHA256 = tx.req.Binary, tx.req.SHA256
	s.adopt(tx.name, tx.inst, tx.programs, tx.next)
	s.recordInstance(tx.name)
	s.state.Plugins[tx.name].Upgraded = tx.u.Configured
	if err := s.saveStateLocked(); err != nil {
		s.log.Error("save state after commit", "plugin", tx.name, "error", err)
	}
	return nil
}

// finish stops the old instance and empties the old generation's bank,
// past the commit point: failures are logged, the upgrade stands.
func (tx *upgradeTx) finish() {
	s := tx.s
	tx.old.Kill()
	if err := s.retire(tx.res.Previous); err != nil {
		s.log.Warn("retire generation", "generation", tx.res.Previous, "error", err)
	}
	s.mu.Lock()
	s.unpinUnused()
	s.mu.Unlock()
	tx.end()
}

// rollback flips back to the previous generation, ends the new instance
// and gives the lease back to the old one if the handoff had taken it.
func (tx *upgradeTx) rollback(ctx context.Context, reason string) (*UpgradeResult, error) {
	s := tx.s
	if tx.migrated {
		if err := tx.migrateBack(ctx); err != nil {
			// The new maps keep serving through generation N+1, whose
			// programs outlive the new instance; say so loudly.
			s.log.Error("migrate the maps back", "plugin", tx.name, "error", err)
			reason += fmt.Sprintf("; migrating the maps back failed, they stay in the new layout: %v", err)
		}
	} else {
		s.mu.Lock()
		s.gens.flip(tx.res.Previous)
		s.mu.Unlock()
	}
	tx.inst.Kill() // its GC ends with it, before the old instance's resumes
	if tx.revoked {
		if err := tx.regrant(ctx); err != nil {
			s.log.Error("give the gc lease back to the old instance", "plugin", tx.name, "error", err)
		}
	}
	if err := s.retire(tx.next); err != nil {
		s.log.Warn("retire generation", "generation", tx.next, "error", err)
	}
	s.dropGeneration(tx.next)
	tx.end()
	tx.res.RolledBack, tx.res.Reason = true, reason
	s.metrics.rolledBack()
	s.log.Warn("upgrade rolled back", "plugin", tx.name, "to", tx.res.To, "reason", reason)
	return tx.res, fmt.Errorf("upgrade %s to %s rolled back to generation %d: %s", tx.name, tx.res.To, tx.res.Previous, reason)
}

func (tx *upgradeTx) regrant(ctx context.Context) error {
	s := tx.s
	s.mu.Lock()
	act := &plugin.ActivateRequest{Generation: s.gens.Active(), BPFFS: s.cfg.BPFFS, StateDir: s.cfg.StateDir, Config: tx.m.cfg.Config, GCLease: true}
	s.mu.Unlock()
	rctx, cancel := rpcContext(context.WithoutCancel(ctx), activateTimeout)
	defer cancel()
	if err := tx.old.Datapath.Activate(rctx, act); err != nil {
		return err
	}
	s.mu.Lock()
	if tx.m.inst == tx.old {
		tx.m.lease = true
	}
	s.mu.Unlock()
	return nil
}

func (tx *upgradeTx) refused(err error) (*UpgradeResult, error) {
	s := tx.s
	tx.res.Reason = err.Error()
	s.metrics.refused()
	s.log.Warn("upgrade refused", "plugin", tx.name, "error", err)
	return tx.res, fmt.Errorf("upgrade %s refused, generation %d unchanged: %w", tx.name, s.gens.Active(), err)
}

// end forgets the upgrade record.
func (tx *upgradeTx) end() {
	s := tx.s
	s.mu.Lock()
	defer s.mu.Unlock()
	tx.m.upgrading = false
	if s.state.Upgrade == tx.u {
		s.state.Upgrade = nil
	}
	if err := s.saveStateLocked(); err != nil {
		s.log.Error("save state", "error", err)
	}
}
