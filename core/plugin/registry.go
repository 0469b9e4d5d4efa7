package plugin

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Registry answers Datapath.Metrics from client_golang collectors. Embed it
// in a plugin and register counters, gauges and histograms on it:
//
//	type Plugin struct {
//		plugin.Registry
//		...
//	}
//	p := &Plugin{Registry: plugin.NewRegistry()}
//	runs := prometheus.NewCounter(prometheus.CounterOpts{Name: "runs_total", Help: "..."})
//	p.MustRegister(runs)
//
// The zero Registry reports no metrics, for plugins that have none.
type Registry struct{ *prometheus.Registry }

// NewRegistry returns an empty Registry.
func NewRegistry() Registry { return Registry{prometheus.NewRegistry()} }

// Metrics gathers every registered collector.
func (r Registry) Metrics(context.Context) ([]*dto.MetricFamily, error) {
	if r.Registry == nil {
		return nil, nil
	}
	return r.Gather()
}
