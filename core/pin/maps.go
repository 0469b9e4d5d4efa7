package pin

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
)

// SharedSpecs returns the specs of every shared map, from the abi object.
func SharedSpecs() (map[string]*ebpf.MapSpec, error) {
	spec, err := abi.LoadAbi()
	if err != nil {
		return nil, fmt.Errorf("load abi spec: %w", err)
	}
	out := make(map[string]*ebpf.MapSpec)
	for name, m := range spec.Maps {
		// .rodata/.bss of the abi object are not shared maps.
		if strings.HasPrefix(name, ".") {
			continue
		}
		out[name] = m
	}
	return out, nil
}

// Sizable are the shared maps whose size the supervisor sets, from its
// config ("map_sizes") or by a live resize (`hotpath map resize`): for them
// the pinned size, not the compiled one, is the contract, and a plugin's
// objects are fitted to it (Fit). Every one is a HASH or LRU_HASH, whose
// entries a resize can copy with batch operations.
var Sizable = map[string]bool{
	abi.MapNAT4: true, abi.MapCT4: true, abi.MapCTAny4: true,
	abi.AbiMapLb4Services: true, abi.AbiMapLb4Backends: true, abi.AbiMapLb4Slots: true,
	abi.AbiMapLb4Revnat: true, abi.AbiMapLb4Affinity: true,
}

// Sized returns specs with the sizes of sizes applied; a name that is not a
// sizable shared map is an error naming it.
func Sized(specs map[string]*ebpf.MapSpec, sizes map[string]uint32) (map[string]*ebpf.MapSpec, error) {
	out := make(map[string]*ebpf.MapSpec, len(specs))
	for n, s := range specs {
		out[n] = s
	}
	for n, size := range sizes {
		if !Sizable[n] || specs[n] == nil {
			return nil, fmt.Errorf("map size of %s: not a sizable shared map (have %s)", n, strings.Join(sizableNames(), ", "))
		}
		s := specs[n].Copy()
		s.MaxEntries = size
		out[n] = s
	}
	return out, nil
}

func sizableNames() []string {
	var out []string
	for n := range Sizable {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// SizableNames lists the sizable shared maps, sorted.
func SizableNames() []string { return sizableNames() }

// Fit sets the size of every sizable map of spec to the size of the live
// map it will be replaced with, so a plugin loads against a shared map the
// supervisor sized from its config.
func Fit(spec *ebpf.CollectionSpec, maps map[string]*ebpf.Map) {
	for n := range Sizable {
		if ms, m := spec.Maps[n], maps[n]; ms != nil && m != nil {
			ms.MaxEntries = m.MaxEntries()
		}
	}
	fitLayouts(spec, maps) // and to the layout of every versioned map
}

// OpenIfPinned opens the map pinned at path, checked against spec, or
// returns nil when nothing is pinned there: for a reader (metrics, a test)
// that must not create the map as a side effect. opts may ask for a
// read-only descriptor. A pinned map that differs from spec is an error.
func OpenIfPinned(spec *ebpf.MapSpec, path string, opts *ebpf.LoadPinOptions) (*ebpf.Map, error) {
	m, err := ebpf.LoadPinnedMap(path, opts)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err == nil {
		if err = Check(spec, m); err != nil {
			m.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open map %s at %s: %w", spec.Name, path, err)
	}
	return m, nil
}

// OpenOrCreate opens the map pinned at path, or creates and pins it from spec
// when nothing is pinned there. A pinned map that differs from spec is an
// error that names the map and what differs; the pin is left in place.
func OpenOrCreate(spec *ebpf.MapSpec, path string) (m *ebpf.Map, created bool, err error) {
	if m, err = OpenIfPinned(spec, path, nil); err != nil || m != nil {
		return m, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("create pin dir for %s: %w", spec.Name, err)
	}
	s := spec.Copy()
	s.Pinning = ebpf.PinNone
	m, err = ebpf.NewMap(s)
	if err != nil {
		return nil, false, fmt.Errorf("create map %s: %w", spec.Name, err)
	}
	if err := m.Pin(path); err != nil {
		m.Close()
		return nil, false, fmt.Errorf("pin map %s at %s: %w", spec.Name, path, err)
	}
	return m, true, nil
}

// ErrIncompatible marks a pinned map whose shape differs from the code's spec.
var ErrIncompatible = errors.New("incompatible pinned map")

// Check compares a live map with the spec it should have been created from
// and names every difference: type, sizes, flags, and the BTF types of key
// and value, so a reordered struct of the same size is refused too. A
// shared map with several layouts (Versioned) passes at any of them:
// VersionOf says which.
func Check(spec *ebpf.MapSpec, m *ebpf.Map) error {
	_, err := VersionOf(spec, spec.Name, m)
	return err
}

// checkExact is Check against exactly spec.
func checkExact(spec *ebpf.MapSpec, m *ebpf.Map) error {
	info, err := m.Info()
	if err != nil {
		return fmt.Errorf("map info: %w", err)
	}
	var diffs []string
	if info.Type != spec.Type {
		diffs = append(diffs, fmt.Sprintf("type is %s, want %s", info.Type, spec.Type))
	}
	if info.KeySize != spec.KeySize {
		diffs = append(diffs, fmt.Sprintf("key size is %d, want %d", info.KeySize, spec.KeySize))
	}
	if info.ValueSize != spec.ValueSize {
		diffs = append(diffs, fmt.Sprintf("value size is %d, want %d", info.ValueSize, spec.ValueSize))
	}
	if info.MaxEntries != spec.MaxEntries {
		diffs = append(diffs, fmt.Sprintf("max entries is %d, want %d", info.MaxEntries, spec.MaxEntries))
	}
	if info.Flags != spec.Flags {
		diffs = append(diffs, fmt.Sprintf("flags are %#x, want %#x", info.Flags, spec.Flags))
	}
	btfDiffs, err := checkBTF(spec, m)
	if err != nil {
		return err
	}
	diffs = append(diffs, btfDiffs...)
	if len(diffs) > 0 {
		return fmt.Errorf("%w: %s", ErrIncompatible, strings.Join(diffs, ", "))
	}
	return nil
}

// OpenShared opens every shared map pinned under l, checked against its spec,
// for use as ebpf.CollectionOptions.MapReplacements. It never creates a map:
// only the supervisor does.
func OpenShared(l Layout) (map[string]*ebpf.Map, error) {
	specs, err := SharedSpecs()
	if err != nil {
		return nil, err
	}
	out := make(map[string]*ebpf.Map, len(specs))
	for name, spec := range specs {
		m, err := openPinned(l, name, spec)
		if err != nil {
			CloseAll(out)
			return nil, err
		}
		out[name] = m
	}
	return out, nil
}

// OpenPinned opens shared map name pinned under l, checked against this
// build's spec (any size for a sizable map). Like OpenShared it never
// creates a map. A process that keeps the handle must open it again after
// a live resize (the supervisor re-activates the plugins that use the map).
func OpenPinned(l Layout, name string) (*ebpf.Map, error) {
	specs, err := SharedSpecs()
	if err != nil {
		return nil, err
	}
	spec, ok := specs[name]
	if !ok {
		return nil, fmt.Errorf("open shared map %s: no such shared map", name)
	}
	return openPinned(l, name, spec)
}

func openPinned(l Layout, name string, spec *ebpf.MapSpec) (*ebpf.Map, error) {
	path := l.Shared(name)
	m, err := ebpf.LoadPinnedMap(path, nil)
	if err == nil {
		if Sizable[name] {
			spec = spec.Copy()
			spec.MaxEntries = m.MaxEntries() // the supervisor sized it
		}
		if err = Check(spec, m); err != nil {
			m.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open shared map %s at %s: %w", name, path, err)
	}
	return m, nil
}

// CloseAll closes every map of ms.
func CloseAll(ms map[string]*ebpf.Map) {
	for _, m := range ms {
		m.Close()
	}
}

// OpenAllShared creates or re-opens every shared map under l, in name
// order, sized by sizes for the sizable maps (nil: the specs' sizes). It
// returns the maps and the names it created; the rest were re-opened. On
// error nothing stays open and no pin was changed.
func OpenAllShared(l Layout, sizes map[string]uint32) (map[string]*ebpf.Map, []string, error) {
	specs, err := SharedSpecs()
	if err != nil {
		return nil, nil, err
	}
	if specs, err = Sized(specs, sizes); err != nil {
		return nil, nil, err
	}
	names := make([]string, 0, len(specs))
	for n := range specs {
		names = append(names, n)
	}
	sort.Strings(names)
	maps := make(map[string]*ebpf.Map, len(specs))
	var created []string
	for _, name := range names {
		m, fresh, err := OpenOrCreate(specs[name], l.Shared(name))
		if err != nil {
			CloseAll(maps)
			return nil, nil, err
		}
		maps[name] = m
		if fresh {
			created = append(created, name)
		}
	}
	return maps, created, nil
}
