package supervisor

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-hclog"
)

// Run starts the supervisor, serves its control API and metrics, and stops
// it when ctx ends. Kernel objects outlive it.
func Run(ctx context.Context, cfg Config, log hclog.Logger) error {
	s, err := Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer s.Stop()
	errc := make(chan error, 2)
	if err := s.startSync(ctx); err != nil {
		return err
	}
	go func() { errc <- s.Serve(ctx) }()
	if cfg.MetricsAddr != "" {
		go func() {
			if err := s.ServeMetrics(ctx, cfg.MetricsAddr); err != nil {
				errc <- fmt.Errorf("serve metrics on %s: %w", cfg.MetricsAddr, err)
			}
		}()
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		if err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	}
}
