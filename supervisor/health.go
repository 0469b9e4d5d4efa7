package supervisor

import (
	"context"
	"time"
)

// healthEvery is how often plugins are asked for their health.
const healthEvery = 2 * time.Second

// pollHealth keeps every plugin's healthy flag current until ctx ends.
func (s *Supervisor) pollHealth(ctx context.Context) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(healthEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			s.mu.Lock()
			names := make([]string, 0, len(s.plugins))
			for n := range s.plugins {
				names = append(names, n)
			}
			s.mu.Unlock()
			for _, n := range names {
				s.checkHealth(ctx, n)
			}
		}
	}()
}

func (s *Supervisor) checkHealth(ctx context.Context, name string) {
	s.mu.Lock()
	m := s.plugins[name]
	inst := m.inst
	s.mu.Unlock()
	if inst == nil || inst.Exited() {
		return
	}
	cctx, cancel := rpcContext(ctx, healthTimeout)
	defer cancel()
	h, err := inst.Datapath.Health(cctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.inst != inst {
		return
	}
	switch {
	case err != nil:
		m.healthy, m.reason = false, err.Error()
	default:
		m.healthy, m.reason = h.Healthy, h.Reason
	}
}
