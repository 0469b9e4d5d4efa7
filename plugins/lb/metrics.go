package lb

import (
	"time"

	"github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hotpath/hotpath/core/pin"
)

// Metrics are the lb plugin's own Prometheus metrics; the supervisor exports
// them as hotpath_lb_<name>. They live as long as the plugin process.
type Metrics struct {
	rebuilds prometheus.Counter
	build    prometheus.Histogram
	commands *prometheus.CounterVec
	services *prometheus.Desc
	backends *prometheus.Desc
	free     *prometheus.Desc
	largest  *prometheus.Desc
	store    func() *Store // the active store, nil before Activate
}

// NewMetrics creates the lb metrics and registers them on reg; store returns
// the store whose maps the service and backend gauges count.
func NewMetrics(reg prometheus.Registerer, store func() *Store) *Metrics {
	m := &Metrics{
		rebuilds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "table_rebuilds_total", Help: "Maglev tables built and swapped in by this plugin instance.",
		}),
		build: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "table_build_seconds", Help: "Duration of Maglev table builds and swaps.",
			Buckets: prometheus.ExponentialBuckets(1e-4, 3, 10), // 100 µs .. 2 s
		}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "commands_total", Help: "Invoke commands handled, by command and result (ok, error).",
		}, []string{"command", "result"}),
		services: prometheus.NewDesc("services", "Services in lb4_services.", nil, nil),
		backends: prometheus.NewDesc("backends", "Backends in lb4_backends, over all services.", nil, nil),
		free: prometheus.NewDesc("maglev_free_chunks",
			"Free lb4_maglev chunks (16 backend ids each), reusable now or after a grace period; a table of M needs ceil(M/16) in one run.", nil, nil),
		largest: prometheus.NewDesc("maglev_largest_free_run", "The longest run of free lb4_maglev chunks: the largest table that fits now.", nil, nil),
		store:   store,
	}
	reg.MustRegister(m.rebuilds, m.build, m.commands, m)
	return m
}

// tableBuilt records one Maglev table built and swapped in. A nil Metrics
// records nothing (stores used outside a plugin, in tests and benchmarks).
func (m *Metrics) tableBuilt(d time.Duration) {
	if m == nil {
		return
	}
	m.rebuilds.Inc()
	m.build.Observe(d.Seconds())
}

func (m *Metrics) command(cmd string, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.commands.WithLabelValues(cmd, result).Inc()
}

// Describe and Collect make the service and backend counts a collector:
// they are read from the maps at scrape time, the maps being the only record.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.services
	ch <- m.backends
	ch <- m.free
	ch <- m.largest
}

func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	s := m.store()
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for desc, mp := range map[*prometheus.Desc]*ebpf.Map{m.services: s.maps.Services, m.backends: s.maps.Backends} {
		n, err := pin.Count(mp)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(desc, err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(n))
	}
	sp, err := s.tables()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(m.free, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(m.free, prometheus.GaugeValue, float64(sp.free()))
	ch <- prometheus.MustNewConstMetric(m.largest, prometheus.GaugeValue, float64(largest(merge(sp.clean, sp.dirty))))
}
