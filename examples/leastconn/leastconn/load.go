package leastconn

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/pin"
)

// Name is the plugin's name: its pins live under plugins/leastconn/.
const Name = "leastconn"

// CountMap is the name of the private map of active connections per
// backend, pinned under plugins/leastconn/maps/. It outlives generations
// and restarts of the plugin.
const CountMap = "lc_active"

// CountPath is where the count map is pinned.
func CountPath(l pin.Layout) string { return filepath.Join(l.PluginPrivate(Name), CountMap) }

// OpenCounts opens the pinned count map, creating it on first use. A pinned
// map of another shape is an error, never silently replaced.
func OpenCounts(l pin.Layout) (*ebpf.Map, error) {
	spec, err := loadLeastconn()
	if err != nil {
		return nil, fmt.Errorf("load leastconn spec: %w", err)
	}
	m, _, err := pin.OpenOrCreate(spec.Maps[CountMap], CountPath(l))
	return m, err
}

// LoadStage loads the selection stage against the shared maps pinned under
// l and the count map, with cfg's constants. The caller owns the program.
func LoadStage(l pin.Layout, cfg Config) (*ebpf.Program, error) {
	spec, err := loadLeastconn()
	if err != nil {
		return nil, fmt.Errorf("load leastconn spec: %w", err)
	}
	if err := spec.Variables["lb_hash_seed"].Set(cfg.MaglevSeed); err != nil {
		return nil, fmt.Errorf("set lb_hash_seed: %w", err)
	}
	maps, err := pin.OpenShared(l)
	if err != nil {
		return nil, err
	}
	defer pin.CloseAll(maps)
	pin.Fit(spec, maps) // shared maps the supervisor sized (config, live resize)
	counts, err := OpenCounts(l)
	if err != nil {
		return nil, err
	}
	defer counts.Close()
	maps[CountMap] = counts
	var objs leastconnPrograms
	if err := spec.LoadAndAssign(&objs, &ebpf.CollectionOptions{MapReplacements: maps}); err != nil {
		return nil, fmt.Errorf("load leastconn stage: %w", err)
	}
	return objs.HpLeastconnSelect, nil
}

// pinStage pins prog where the supervisor picks it up for generation gen.
func pinStage(prog *ebpf.Program, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create pin dir: %w", err)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove old pin %s: %w", path, err)
	}
	if err := prog.Pin(path); err != nil {
		return fmt.Errorf("pin leastconn stage at %s: %w", path, err)
	}
	return nil
}
