package supervisor

import (
	"context"
	"sort"

	"github.com/prometheus/client_golang/prometheus"

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

// The cluster source's metrics: exported only while a source runs.
var (
	clusterState = prometheus.NewDesc("hotpath_cluster_state", "Cluster source state: 1 for the current one of connecting, healthy, degraded.", []string{"state"}, nil)
	clusterCmds  = prometheus.NewDesc("hotpath_cluster_changes_total", "Datapath commands the cluster source sent (a resync that finds nothing changed sends none).", nil, nil)
	clusterSkip  = prometheus.NewDesc("hotpath_cluster_skipped", "Things the cluster source could not program (missing plugin, refused key, failed command).", nil, nil)
	clusterSync  = prometheus.NewDesc("hotpath_cluster_last_sync_timestamp_seconds", "When the cluster source last converged.", nil, nil)
)

func describeCluster(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{clusterState, clusterCmds, clusterSkip, clusterSync} {
		ch <- d
	}
}

func collectCluster(ch chan<- prometheus.Metric, st *cluster.Status) {
	if st == nil {
		return
	}
	for _, s := range []string{cluster.StateConnecting, cluster.StateHealthy, cluster.StateDegraded} {
		v := 0.0
		if st.State == s {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(clusterState, prometheus.GaugeValue, v, s)
	}
	ch <- prometheus.MustNewConstMetric(clusterCmds, prometheus.CounterValue, float64(st.Changes))
	ch <- prometheus.MustNewConstMetric(clusterSkip, prometheus.GaugeValue, float64(len(st.Skipped)))
	if !st.LastSync.IsZero() {
		ch <- prometheus.MustNewConstMetric(clusterSync, prometheus.GaugeValue, float64(st.LastSync.UnixNano())/1e9)
	}
}
