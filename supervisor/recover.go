package supervisor

import (
	"os"
)

// resolveUpgrade finishes an upgrade a dead supervisor left in flight. Past
// the commit point the new instance is the plugin: the old instance is
// ended (matched against what the old instance ran, not the new binary),
// and the new binary is what runs from now on. Before it, the old
// generation is made live again and the new instance is ended. Either way
// one generation is active and one instance of the plugin runs.
func (s *Supervisor) resolveUpgrade() error {
	u := s.state.Upgrade
	if u == nil {
		return nil
	}
	ps := s.state.Plugins[u.Plugin]
	if u.Phase != phaseCommitted && ps != nil && s.migratedForward(u) {
		// The maps are in the new build's layout already, and generation
		// N, against the old maps, is gone: rolling back would need a
		// migration back, which needs running plugins. Finish it forward.
		u.Phase, u.NewGen = phaseCommitted, s.gens.Active()
		if len(u.Programs) == 0 {
			u.Programs = s.pinnedPrograms(u.Plugin, ps, u.NewGen)
		}
		s.log.Warn("an upgrade that migrated maps was interrupted before its commit: finishing it", "plugin", u.Plugin, "migrations", migrationNames(u.Migrations))
	}
	if u.Phase == phaseCommitted && ps != nil {
		ps.Programs, ps.Reattach, ps.Path, ps.SHA256 = u.Programs, u.New, u.Binary, u.SHA256
		if u.To != "" {
			ps.Version = u.To
		}
		ps.Upgraded = u.Configured
		stale := s.gens.of(u.Plugin)
		s.gens.set(u.Plugin, u.NewGen)
		if s.gens.Active() == u.NewGen && u.OldGen != 0 {
			// The old generation's bank and the old programs' pins are
			// what the interrupted commit would have dropped next.
			if err := s.pipe.Settle(); err != nil {
				return err
			}
			if err := s.pipe.Release(u.OldGen); err != nil {
				s.log.Warn("release generation", "generation", u.OldGen, "error", err)
			}
		}
		if stale != 0 && stale != u.NewGen {
			os.RemoveAll(s.layout.Plugin(u.Plugin, stale))
		}
		if u.Old != nil {
			old := ""
			if u.OldBinary != nil {
				old = u.OldBinary.Path
			}
			s.killStale(u.Plugin, *u.Old, old)
		}
		s.log.Warn("finished an upgrade interrupted after commit", "plugin", u.Plugin, "generation", u.NewGen)
	} else {
		if s.gens.Active() == u.NewGen && u.NewGen != 0 {
			s.gens.flip(u.OldGen)
			if err := s.pipe.Settle(); err != nil {
				return err
			}
			if err := s.pipe.Release(u.NewGen); err != nil {
				s.log.Warn("release generation", "generation", u.NewGen, "error", err)
			}
		}
		if u.New != nil {
			s.killStale(u.Plugin, *u.New, u.Binary)
		}
		if u.NewGen != 0 {
			os.RemoveAll(s.layout.Plugin(u.Plugin, u.NewGen))
		}
		s.log.Warn("rolled back an upgrade interrupted before commit", "plugin", u.Plugin, "generation", s.gens.Active())
	}
	s.state.Upgrade = nil
	return s.saveStateLocked()
}
