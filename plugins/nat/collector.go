package nat

import "github.com/prometheus/client_golang/prometheus"

// metric is one of the nat stats as the supervisor exports it
// (hotpath_nat_<name>).
type metric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(Stats) float64
}

func newMetric(name, help string, kind prometheus.ValueType, value func(Stats) float64) metric {
	return metric{desc: prometheus.NewDesc(name, help, nil, nil), kind: kind, value: value}
}

var metrics = []metric{
	newMetric("mappings", "Masqueraded flows with a mapping.", prometheus.GaugeValue, func(s Stats) float64 { return float64(s.Mappings) }),
	newMetric("allocations_total", "Ports handed out to new flows.", prometheus.CounterValue, func(s Stats) float64 { return float64(s.Allocations) }),
	newMetric("collisions_total", "Port probes that found the port taken by a live flow.", prometheus.CounterValue, func(s Stats) float64 { return float64(s.Collisions) }),
	newMetric("exhaustion_drops_total", "New flows dropped because no port was free.", prometheus.CounterValue, func(s Stats) float64 { return float64(s.Exhausted) }),
	newMetric("reclaimed_total", "Ports taken over by the datapath from flows whose CT entry ended.", prometheus.CounterValue, func(s Stats) float64 { return float64(s.Reclaimed) }),
	newMetric("repaired_total", "Reply entries re-created after LRU eviction.", prometheus.CounterValue, func(s Stats) float64 { return float64(s.Repaired) }),
	newMetric("icmp_errors_total", "ICMP errors translated back to a pod.", prometheus.CounterValue, func(s Stats) float64 { return float64(s.ICMPErrors) }),
	newMetric("orphans_purged_total", "Mappings deleted by GC because their flow's CT entry was gone.", prometheus.CounterValue, func(s Stats) float64 { return float64(s.GC.Purged) }),
	newMetric("gc_runs_total", "NAT GC passes.", prometheus.CounterValue, func(s Stats) float64 { return float64(s.GC.Runs) }),
	newMetric("gc_signals_total", "NAT GC passes started by an exhaustion signal from the datapath.", prometheus.CounterValue, func(s Stats) float64 { return float64(s.GC.Signals) }),
}

// collector reads the stats when scraped: most of them are the datapath's
// per-CPU counters, which only exist as the kernel keeps them.
type collector struct{ p *Plugin }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range metrics {
		ch <- m.desc
	}
}

// Collect reports nothing before activation and, after a failed read, an
// invalid metric, so the scrape says what went wrong instead of zeros.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.p.mu.Lock()
	rt := c.p.rt
	c.p.mu.Unlock()
	if rt == nil {
		return
	}
	st, err := rt.stats()
	for _, m := range metrics {
		if err != nil {
			ch <- prometheus.NewInvalidMetric(m.desc, err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(st))
	}
}
