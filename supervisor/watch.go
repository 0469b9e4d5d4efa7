package supervisor

import (
	"context"
	"time"

	"github.com/hotpath/hotpath/supervisor/host"
)

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
			if !s.exited(name, inst) {
				continue // replaced by an upgrade or a restart: watch the new one
			}
			s.log.Warn("plugin exited", "plugin", name, "pid", inst.Pid)
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(b.Next()):
				}
				err := s.serial(ctx, func(ctx context.Context) error { return s.restart(ctx, name, inst) })
				if err == nil {
					break
				}
				s.log.Error("restart plugin", "plugin", name, "error", err)
			}
		}
	}()
}

// exited records that plugin name's instance inst ended; it reports false
// when inst is not the current instance any more.
func (s *Supervisor) exited(name string, inst *host.Instance) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.plugins[name]
	if m.inst != inst {
		return false
	}
	if !m.upgrading { // an upgrade decides what an exit of the old instance means
		m.restarts++
		m.healthy, m.lease, m.reason = false, false, "process exited"
	}
	return true
}

// restart replaces plugin name's ended instance dead with a fresh one that
// re-adopts its pinned programs, or loads new ones if the binary changed
// version. Whatever fails once the new process runs ends that process, so
// retries never pile up plugin processes.
func (s *Supervisor) restart(ctx context.Context, name string, dead *host.Instance) error {
	s.mu.Lock()
	m := s.plugins[name]
	if s.stopping || m.inst != dead {
		s.mu.Unlock()
		return nil // stopping, or an upgrade replaced it meanwhile
	}
	pc := m.cfg
	s.mu.Unlock()
	inst, err := host.Start(ctx, s.spec(pc), s.log.Named(name))
	if err != nil {
		return err
	}
	if err := s.install(ctx, name, dead, inst); err != nil {
		inst.Kill()
		s.mu.Lock()
		m.inst, m.reload = dead, false
		s.mu.Unlock()
		return err
	}
	s.log.Info("plugin restarted", "plugin", name, "pid", inst.Pid, "restarts", m.restarts)
	return nil
}

// install makes the started instance inst plugin name's current one:
// compatibility check, its programs (reused or loaded into a new
// generation), its lease, and the state file.
func (s *Supervisor) install(ctx context.Context, name string, dead, inst *host.Instance) error {
	s.mu.Lock()
	m := s.plugins[name]
	if err := s.checkPlugin(inst.Desc, s.claimedExcept(name)); err != nil {
		s.mu.Unlock()
		return err
	}
	m.inst = inst
	m.reload = !s.programsReusable(name, inst.Desc, m.cfg)
	s.mu.Unlock()
	if err := s.reconcile(ctx, "restart "+name); err != nil {
		return err
	}
	if err := s.activate(ctx, name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recordInstance(name)
	return s.saveStateLocked()
}
