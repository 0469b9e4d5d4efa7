package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/plugin"
)

// metrics exports datapath counters, map pressure and plugin state at
// scrape time. Every plugin's own metrics come through pluginGatherer.
type metrics struct {
	s         *Supervisor
	counterMu sync.Mutex
	counter   *entryCounter // created at the first scrape: maps are open by then
	packets   *prometheus.Desc
	bytes     *prometheus.Desc
	drops     *prometheus.Desc
	entries   *prometheus.Desc
	capacity  *prometheus.Desc
	restarts  *prometheus.Desc
	up        *prometheus.Desc
	gen       *prometheus.Desc

	upgrades  *prometheus.CounterVec
	duration  prometheus.Histogram
	flipToPkt prometheus.Histogram
	resizes   *prometheus.CounterVec // live resizes and migrations (remap.go)
	resizeErr *prometheus.CounterVec
}

func newMetrics(s *Supervisor) *metrics {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName("hotpath", "", name), help, labels, nil)
	}
	return &metrics{
		s:        s,
		packets:  d("datapath_packets_total", "Packets that ended the pipeline, by reason and direction.", "reason", "direction"),
		bytes:    d("datapath_bytes_total", "Bytes that ended the pipeline, by reason and direction.", "reason", "direction"),
		drops:    d("datapath_drops_total", "Packets dropped by the datapath, by reason and direction.", "reason", "direction"),
		entries:  d("map_entries", "Entries in a shared map (hash and LRU maps), counted at most every 5s.", "map"),
		capacity: d("map_max_entries", "Capacity of a shared map.", "map"),
		restarts: d("plugin_restarts_total", "Plugin process restarts after a crash.", "plugin"),
		up:       d("plugin_healthy", "1 when the plugin is running and reports healthy.", "plugin"),
		gen:      d("pipeline_generation", "Active pipeline generation."),
		upgrades: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "hotpath", Name: "upgrades_total", Help: "Plugin upgrades by result: done, rolled_back, refused.",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "hotpath", Name: "upgrade_duration_seconds", Help: "Duration of successful upgrades, start to old instance stopped.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		}),
		flipToPkt: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "hotpath", Name: "upgrade_flip_to_first_packet_seconds", Help: "Time from a generation flip to the first packet entering the new generation.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12),
		}),
		resizes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "hotpath", Name: "map_resizes_total", Help: "Shared maps replaced live, by map and reason: resize, auto-grow, config, upgrade.",
		}, []string{"map", "reason"}),
		resizeErr: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "hotpath", Name: "map_resize_failures_total", Help: "Live map replacements that failed and left the old maps serving, by reason.",
		}, []string{"reason"}),
	}
}

func (m *metrics) resized(name, reason string) {
	if m != nil {
		m.resizes.WithLabelValues(name, reason).Inc()
	}
}

func (m *metrics) remapFailed(reason string) {
	if m != nil {
		m.resizeErr.WithLabelValues(reason).Inc()
	}
}

// mapChanged points the entry counter at a shared map's new handle.
func (m *metrics) mapChanged(name string, mp *ebpf.Map) {
	m.counterMu.Lock()
	defer m.counterMu.Unlock()
	if m.counter != nil {
		m.counter.set(name, mp)
	}
}

func (m *metrics) upgraded(r *UpgradeResult) {
	m.upgrades.WithLabelValues("done").Inc()
	m.duration.Observe(r.Duration.Seconds())
	if r.FlipToPacket > 0 {
		m.flipToPkt.Observe(r.FlipToPacket.Seconds())
	}
}

func (m *metrics) rolledBack() { m.upgrades.WithLabelValues("rolled_back").Inc() }
func (m *metrics) refused()    { m.upgrades.WithLabelValues("refused").Inc() }

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.packets, m.bytes, m.drops, m.entries, m.capacity, m.restarts, m.up, m.gen} {
		ch <- d
	}
	ch <- forwardDesc
	describeCluster(ch)
	m.upgrades.Describe(ch)
	m.duration.Describe(ch)
	m.flipToPkt.Describe(ch)
	m.resizes.Describe(ch)
	m.resizeErr.Describe(ch)
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.upgrades.Collect(ch)
	m.duration.Collect(ch)
	m.flipToPkt.Collect(ch)
	m.resizes.Collect(ch)
	m.resizeErr.Collect(ch)
	m.collectDatapath(ch)
	m.collectForward(ch)
	m.collectMaps(ch)
	st := m.s.Status()
	collectCluster(ch, st.Cluster)
	ch <- prometheus.MustNewConstMetric(m.gen, prometheus.GaugeValue, float64(st.ActiveGeneration))
	for _, p := range st.Plugins {
		ch <- prometheus.MustNewConstMetric(m.restarts, prometheus.CounterValue, float64(p.Restarts), p.Name)
		ch <- prometheus.MustNewConstMetric(m.up, prometheus.GaugeValue, b2f(p.Healthy), p.Name)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// DatapathCounters sums the per-CPU metrics map: reason -> direction -> value.
func DatapathCounters(metricsMap *ebpf.Map) (map[abi.Reason][2]abi.Metric, error) {
	out := map[abi.Reason][2]abi.Metric{}
	var per []abi.Metric
	for r := abi.Reason(0); r < abi.Reason(abi.Reasons); r++ {
		var both [2]abi.Metric
		for dir := uint32(0); dir < 2; dir++ {
			if err := metricsMap.Lookup(abi.MetricKey(r, dir), &per); err != nil {
				return nil, err
			}
			for _, v := range per {
				both[dir].Packets += v.Packets
				both[dir].Bytes += v.Bytes
			}
		}
		if both[0].Packets+both[1].Packets > 0 {
			out[r] = both
		}
	}
	return out, nil
}

var dirNames = [2]string{DirIngress, DirEgress}

func (m *metrics) collectDatapath(ch chan<- prometheus.Metric) {
	counters, err := DatapathCounters(m.s.sharedMap(abi.MapMetrics))
	if err != nil {
		return
	}
	for r, both := range counters {
		for dir, v := range both {
			reason, d := abi.ReasonName(r), dirNames[dir]
			ch <- prometheus.MustNewConstMetric(m.packets, prometheus.CounterValue, float64(v.Packets), reason, d)
			ch <- prometheus.MustNewConstMetric(m.bytes, prometheus.CounterValue, float64(v.Bytes), reason, d)
			if abi.Dropped(r) {
				ch <- prometheus.MustNewConstMetric(m.drops, prometheus.CounterValue, float64(v.Packets), reason, d)
			}
		}
	}
}

func (m *metrics) collectMaps(ch chan<- prometheus.Metric) {
	// A live resize replaces handles (useMap): read them under mu.
	m.s.mu.Lock()
	byName := make(map[string]*ebpf.Map, len(m.s.maps.ByName))
	names := make([]string, 0, len(m.s.maps.ByName))
	for n, mp := range m.s.maps.ByName {
		names = append(names, n)
		byName[n] = mp
	}
	m.s.mu.Unlock()
	sort.Strings(names)
	m.counterMu.Lock()
	if m.counter == nil {
		m.counter = newEntryCounter(byName)
	}
	counter := m.counter
	m.counterMu.Unlock()
	counts, _ := counter.Counts()
	for _, n := range names {
		mp := byName[n]
		ch <- prometheus.MustNewConstMetric(m.capacity, prometheus.GaugeValue, float64(mp.MaxEntries()), n)
		if c, ok := counts[n]; ok {
			ch <- prometheus.MustNewConstMetric(m.entries, prometheus.GaugeValue, float64(c), n)
		}
	}
}

// pluginGatherer merges every plugin's own metric families (the Metrics
// call) into the supervisor's /metrics, each renamed
// hotpath_<plugin>_<name>. Plugins are asked in parallel, each with a
// deadline; one that fails or is too slow is left out of that scrape, with
// an error for the log, and the rest is served.
type pluginGatherer struct{ s *Supervisor }

const pluginMetricsTimeout = 2 * time.Second

func (g pluginGatherer) Gather() ([]*dto.MetricFamily, error) {
	type source struct {
		name string
		dp   plugin.Datapath
	}
	var srcs []source
	g.s.mu.Lock()
	for name, m := range g.s.plugins {
		// Plugins older than MinorMetrics have no Metrics call.
		if m.inst != nil && m.inst.Desc != nil && m.inst.Desc.ProtocolMinor >= plugin.MinorMetrics {
			srcs = append(srcs, source{name, m.inst.Datapath})
		}
	}
	g.s.mu.Unlock()
	sort.Slice(srcs, func(i, j int) bool { return srcs[i].name < srcs[j].name })

	results := make([][]*dto.MetricFamily, len(srcs))
	errs := make([]error, len(srcs))
	var wg sync.WaitGroup
	for i, src := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), pluginMetricsTimeout)
			defer cancel()
			fams, err := src.dp.Metrics(ctx)
			if err != nil {
				errs[i] = fmt.Errorf("metrics of plugin %s: %w", src.name, err)
				return
			}
			results[i] = prefixFamilies(src.name, fams)
		}()
	}
	wg.Wait()
	var out []*dto.MetricFamily
	for _, r := range results {
		out = append(out, r...)
	}
	return out, errors.Join(errs...)
}

// prefixFamilies renames a plugin's families hotpath_<plugin>_<name>.
func prefixFamilies(plugin string, fams []*dto.MetricFamily) []*dto.MetricFamily {
	prefix := "hotpath_" + sanitize(plugin) + "_"
	out := fams[:0]
	for _, f := range fams {
		if f == nil || f.GetName() == "" {
			continue
		}
		f.Name = proto.String(prefix + f.GetName())
		out = append(out, f)
	}
	return out
}

// scrapeLog is promhttp's error log.
type scrapeLog struct{ log hclog.Logger }

func (l scrapeLog) Println(v ...any) { l.log.Warn("metrics scrape", "error", fmt.Sprint(v...)) }

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// ServeMetrics answers /metrics on addr until ctx ends.
func (s *Supervisor) ServeMetrics(ctx context.Context, addr string) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.metrics)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	// Gatherers checks the plugins' families against ours (no name used
	// twice, consistent types); a plugin's broken family is logged and left
	// out, never the whole scrape.
	all := prometheus.Gatherers{reg, pluginGatherer{s}}
	mux.Handle("/metrics", promhttp.HandlerFor(all, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      scrapeLog{s.log},
	}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
