package supervisor

import (
	"context"
	"sort"

	"github.com/hotpath/hotpath/cluster"
)

// startSync runs the etcd source when the config enables it. It programs
// the node through Invoke, the path of `hotpath plugin invoke`.
func (s *Supervisor) startSync(ctx context.Context) error {
	if !s.cfg.Config.Enabled() {
		return nil
	}
	sy, err := cluster.New(s.cfg.Config, s, s.log.Named("cluster"))
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.sync = sy
	s.mu.Unlock()
	go sy.Run(ctx)
	return nil
}

// PluginNames lists the configured plugins.
func (s *Supervisor) PluginNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.plugins))
	for n := range s.plugins {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
