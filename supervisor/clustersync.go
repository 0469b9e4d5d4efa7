package supervisor

import (
	"context"
	"sort"

	"github.com/hotpath/hotpath/cluster"
	"github.com/hotpath/hotpath/cluster/kube"
)

// startSync runs the etcd source when the config enables it. It programs
// the node through Invoke, the path of `hotpath plugin invoke`.
func (s *Supervisor) startSync(ctx context.Context) error {
	var src interface {
		Status() cluster.Status
		Run(context.Context)
	}
	switch {
	case s.cfg.Kubernetes != "":
		client, err := kube.Client(s.cfg.Kubernetes)
		if err != nil {
			return err
		}
		src = kube.New(client, s.cfg.NodeName, cluster.NewProgrammer(s.cfg.Config, s), s.log.Named("kube"))
	case s.cfg.Config.Enabled():
		sy, err := cluster.New(s.cfg.Config, s, s.log.Named("cluster"))
		if err != nil {
			return err
		}
		src = sy
	default:
		return nil
	}
	s.mu.Lock()
	s.sync = src
	s.mu.Unlock()
	go src.Run(ctx)
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
