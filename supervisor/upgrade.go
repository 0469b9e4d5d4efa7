package supervisor

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/hotpath/hotpath/supervisor/host"
)

// UpgradeRequest is the body of POST /v1/plugins/{name}/upgrade.
type UpgradeRequest struct {
	Binary       string        `json:"binary"`
	SHA256       string        `json:"sha256,omitempty"`
	HealthWindow time.Duration `json:"health_window"`
}

// check refuses a request the supervisor cannot interpret on its own: the
// supervisor's working directory is not the caller's, so a relative binary
// path would name another file (the CLI sends an absolute one).
func (r UpgradeRequest) check() error {
	if !filepath.IsAbs(r.Binary) {
		return fmt.Errorf("binary %q: want an absolute path", r.Binary)
	}
	return nil
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
	// Migrations are the map layout changes of the upgrade (migrated back
	// when it rolled back).
	Migrations []Migration `json:"migrations,omitempty"`
}

// Upgrade phases, as persisted in UpgradeState.Phase.
const (
	phaseStarting  = "starting"  // new instance started; generation N live
	phaseMigrating = "migrating" // a remap migrates the maps the new build owns (remaptx.go)
	phaseFlipped   = "flipped"   // N+1 live, health gate and lease handoff running
	phaseCommitted = "committed" // the new instance holds the lease and is the plugin
)

// UpgradeState is persisted while an upgrade is in flight, so a supervisor
// that dies mid-upgrade can finish it one way or the other on restart.
type UpgradeState struct {
	Plugin     string         `json:"plugin"`
	OldGen     uint32         `json:"old_generation"`
	NewGen     uint32         `json:"new_generation"`
	Binary     string         `json:"binary"`
	SHA256     string         `json:"sha256,omitempty"`
	To         string         `json:"to_version,omitempty"`
	New        *host.Reattach `json:"new,omitempty"`
	Old        *host.Reattach `json:"old,omitempty"`
	OldBinary  *Binary        `json:"old_binary,omitempty"`
	Configured *Binary        `json:"configured,omitempty"` // the config's binary, which a commit overrides
	Phase      string         `json:"phase"`                // starting, flipped, committed
	Migrations []Migration    `json:"migrations,omitempty"` // map layout changes (remap.go persists their own progress)
	Programs   map[string]string
}

const defaultHealthWindow = 3 * time.Second

// Upgrade replaces plugin name's binary while traffic flows: the new
// instance starts beside the old one, passes the compatibility check, loads
// into generation N+1, which one flip makes live; then a health gate, the GC
// lease handed from old to new (never both), and the old instance stops. A
// failure before the flip leaves N untouched; a crash, an unhealthy report
// or a failed lease handoff flips back to N and keeps the old instance.
// The upgrade runs as one change (see serial.go) and as one transaction
// (see upgradetx.go).
func (s *Supervisor) Upgrade(ctx context.Context, name string, req UpgradeRequest) (*UpgradeResult, error) {
	var res *UpgradeResult
	var uerr error
	err := s.serial(ctx, func(ctx context.Context) error {
		res, uerr = s.upgrade(ctx, name, req)
		return nil
	})
	if err != nil {
		return &UpgradeResult{Plugin: name}, fmt.Errorf("upgrade %s: %w", name, err)
	}
	return res, uerr
}

func (s *Supervisor) upgrade(ctx context.Context, name string, req UpgradeRequest) (*UpgradeResult, error) {
	start := time.Now()
	window := req.HealthWindow
	if window <= 0 {
		window = defaultHealthWindow
	}
	tx, err := s.beginUpgrade(name, req)
	if err != nil {
		return nil, err
	}
	if err := req.check(); err != nil {
		return tx.refused(err)
	}
	if err := tx.prepare(ctx); err != nil {
		return tx.refused(err)
	}
	flip := tx.flip
	if len(tx.migs) > 0 {
		flip = func() error { return tx.migrate(ctx) }
	}
	if err := flip(); err != nil {
		return tx.refused(err)
	}
	s.log.Info("upgrade flipped", "plugin", name, "from", tx.res.From, "to", tx.res.To, "generation", tx.next)
	if reason := tx.gate(ctx, window); reason != "" {
		return tx.rollback(ctx, reason)
	}
	if err := tx.handoff(ctx); err != nil {
		return tx.rollback(ctx, fmt.Sprintf("gc lease handoff: %v", err))
	}
	if err := tx.commit(); err != nil {
		return tx.rollback(ctx, fmt.Sprintf("commit: %v", err))
	}
	tx.finish()
	res := tx.res
	res.Duration = time.Since(start)
	s.metrics.upgraded(res)
	s.log.Info("upgrade done", "plugin", name, "version", res.To, "generation", res.Generation, "took", res.Duration, "flip_to_first_packet", res.FlipToPacket)
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
		hctx, cancel := rpcContext(ctx, healthTimeout)
		h, err := inst.Datapath.Health(hctx)
		cancel()
		if err != nil {
			// A refused connection often means the process is on its way
			// out: give the exit a moment to show, for a precise reason.
			select {
			case <-inst.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
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
