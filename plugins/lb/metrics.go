package lb

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/plugin"
)

// Metrics reports the lb plugin's gauges and counters; the supervisor
// exports them as hotpath_lb_<name>.
func (s *Store) Metrics() ([]plugin.Metric, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	svcs, err := countEntries(s.maps.Services)
	if err != nil {
		return nil, fmt.Errorf("count services: %w", err)
	}
	bes, err := countEntries(s.maps.Backends)
	if err != nil {
		return nil, fmt.Errorf("count backends: %w", err)
	}
	return []plugin.Metric{
		{Name: "services", Help: "Services in lb4_services.", Type: "gauge", Value: float64(svcs)},
		{Name: "backends", Help: "Backends in lb4_backends, over all services.", Type: "gauge", Value: float64(bes)},
		{Name: "table_rebuilds_total", Help: "Maglev tables built and swapped in by this plugin instance.", Type: "counter", Value: float64(s.rebuilds)},
		{Name: "table_build_seconds", Help: "Duration of the last Maglev table build and swap.", Type: "gauge", Value: s.lastDur.Seconds()},
	}, nil
}

// countEntries walks the keys of a hash map; lb maps are small enough.
func countEntries(m *ebpf.Map) (int, error) {
	info, err := m.Info()
	if err != nil {
		return 0, err
	}
	cur, next := make([]byte, info.KeySize), make([]byte, info.KeySize)
	var key any // nil: start at the first key
	for n := 0; ; n++ {
		if err := m.NextKey(key, next); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				return n, nil
			}
			return n, err
		}
		copy(cur, next)
		key = cur
	}
}
