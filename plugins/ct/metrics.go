package ct

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the ct plugin's own Prometheus metrics; the supervisor exports
// them as hotpath_ct_<name>. They live as long as the plugin process, across
// GC leases.
type Metrics struct {
	runs, deleted, kept, scanned prometheus.Counter
	duration                     prometheus.Histogram
	interval, ratio              prometheus.Gauge
}

// NewMetrics creates the GC metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	m := &Metrics{
		runs:    counter("gc_runs_total", "CT GC passes."),
		deleted: counter("gc_deleted_total", "CT entries deleted by GC."),
		kept:    counter("gc_kept_total", "Expired CT entries refreshed by the datapath before GC deleted them."),
		scanned: counter("gc_scanned_total", "CT entries scanned by GC."),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gc_duration_seconds", Help: "Duration of CT GC passes over all CT maps.",
			// 100 µs (an empty map swept in the kernel) to ~13 s (a full
			// 512Ki map walked from user space on a loaded machine).
			Buckets: prometheus.ExponentialBuckets(1e-4, 2.5, 14),
		}),
		interval: gauge("gc_interval_seconds", "Current adaptive GC interval."),
		ratio:    gauge("gc_delete_ratio", "Largest delete ratio of the last pass."),
	}
	reg.MustRegister(m.runs, m.deleted, m.kept, m.scanned, m.duration, m.interval, m.ratio)
	return m
}

// pass records one GC pass. A nil Metrics records nothing.
func (m *Metrics) pass(scanned, deleted, kept uint64, took time.Duration, ratio float64) {
	if m == nil {
		return
	}
	m.runs.Inc()
	m.scanned.Add(float64(scanned))
	m.deleted.Add(float64(deleted))
	m.kept.Add(float64(kept))
	m.duration.Observe(took.Seconds())
	m.ratio.Set(ratio)
}

func (m *Metrics) setInterval(d time.Duration) {
	if m != nil {
		m.interval.Set(d.Seconds())
	}
}
