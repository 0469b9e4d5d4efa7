package supervisor

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// A plugin's families are renamed hotpath_<plugin>_<name> and merge with
// the supervisor's own; a family that clashes with one of ours is reported,
// and the rest is still served.
func TestPluginFamiliesMerge(t *testing.T) {
	plug := prometheus.NewRegistry()
	runs := prometheus.NewCounter(prometheus.CounterOpts{Name: "runs_total", Help: "Runs."})
	took := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "took_seconds", Help: "Took."})
	entries := prometheus.NewGauge(prometheus.GaugeOpts{Name: "entries", Help: "Clashes with hotpath_map_entries."})
	plug.MustRegister(runs, took, entries)
	runs.Inc()
	took.Observe(1)
	fams, err := plug.Gather()
	if err != nil {
		t.Fatal(err)
	}
	fams = append(fams, nil, &dto.MetricFamily{}) // ignored, not a crash

	ours := prometheus.NewRegistry()
	mapEntries := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hotpath_map_entries", Help: "Ours."}, []string{"map"})
	mapEntries.WithLabelValues("ct4").Set(3)
	ours.MustRegister(mapEntries)
	ours.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "hotpath_upgrades_total", Help: "Ours."}))
	merged, err := prometheus.Gatherers{ours, gathered(prefixFamilies("my-map", fams))}.Gather()
	got := map[string]dto.MetricType{}
	for _, f := range merged {
		got[f.GetName()] = f.GetType()
	}
	if got["hotpath_my_map_runs_total"] != dto.MetricType_COUNTER || got["hotpath_my_map_took_seconds"] != dto.MetricType_HISTOGRAM {
		t.Fatalf("merged families %v", got)
	}
	if _, ok := got["hotpath_upgrades_total"]; !ok {
		t.Fatalf("our own family lost: %v", got)
	}
	if err != nil {
		t.Fatalf("unexpected merge error: %v", err)
	}

	// A plugin named "map" exporting "entries" clashes with ours.
	if fams, err = plug.Gather(); err != nil {
		t.Fatal(err)
	}
	_, err = prometheus.Gatherers{ours, gathered(prefixFamilies("map", fams))}.Gather()
	if err == nil || !strings.Contains(err.Error(), "hotpath_map_entries") {
		t.Fatalf("clash not reported: %v", err)
	}
}

type gathered []*dto.MetricFamily

func (g gathered) Gather() ([]*dto.MetricFamily, error) { return g, nil }
