package pin

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
)

// PinProg pins the program a plugin loaded for slot of generation gen where
// the supervisor looks for it (Layout.Prog) and returns that path. A pin
// left there by a crashed load of the same generation is replaced. The
// caller still owns p.
func (l Layout) PinProg(p *ebpf.Program, plugin string, gen uint32, slot string) (string, error) {
	path := l.Prog(plugin, gen, slot)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	os.Remove(path) // a leftover from a crashed load of the same generation
	if err := p.Pin(path); err != nil {
		return "", fmt.Errorf("pin %s stage %s: %w", plugin, slot, err)
	}
	return path, nil
}

// OpenPrivate opens plugin's private maps named in names, creating and
// pinning from spec those that do not exist yet under PluginPrivate. They
// outlive generations and instances, like the shared maps do.
func (l Layout) OpenPrivate(plugin string, spec *ebpf.CollectionSpec, names []string) (map[string]*ebpf.Map, error) {
	out := map[string]*ebpf.Map{}
	for _, name := range names {
		ms, ok := spec.Maps[name]
		if !ok {
			CloseAll(out)
			return nil, fmt.Errorf("plugin %s has no map %s", plugin, name)
		}
		m, _, err := OpenOrCreate(ms, filepath.Join(l.PluginPrivate(plugin), name))
		if err != nil {
			CloseAll(out)
			return nil, err
		}
		out[name] = m
	}
	return out, nil
}
