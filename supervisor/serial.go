package supervisor

import (
	"context"
	"errors"
)

// errStopping refuses a change asked for while the supervisor stops.
var errStopping = errors.New("supervisor is stopping")

// change is one change of the pipeline or of the plugin set.
type change struct {
	ctx  context.Context
	run  func(context.Context) error
	done chan error
}

// runChanges starts the goroutine that runs every change (a plugin restart,
// an upgrade), one at a time, until ctx ends. Owning the order this way, no
// lock is held while a plugin is asked to load, activate or stop: status,
// health checks and commands never wait for a plugin that is slow to answer.
func (s *Supervisor) runChanges(ctx context.Context) {
	s.changes = make(chan change)
	s.quit = ctx.Done()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case c := <-s.changes:
				cctx, cancel := context.WithCancel(c.ctx)
				stop := context.AfterFunc(ctx, cancel) // Stop ends a change early
				c.done <- c.run(cctx)
				stop()
				cancel()
			}
		}
	}()
}

// serial runs f on the change goroutine with ctx and returns its error. Once
// started, f runs to its end even if the caller stops waiting.
func (s *Supervisor) serial(ctx context.Context, f func(context.Context) error) error {
	c := change{ctx: ctx, run: f, done: make(chan error, 1)}
	select {
	case s.changes <- c:
	case <-s.quit:
		return errStopping
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-c.done
}
