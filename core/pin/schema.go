package pin

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/hotpath/hotpath/core/abi"
)

// A schema group is a set of shared maps whose value has more than one
// layout (schema version). Version 1 is the layout the abi object declares
// the maps with; version n is the n-th struct of Values, all of them in
// bpf/lib/abi.h. The maps of a group always have the same version: programs
// read all of them through one load-time constant, Variable, which Fit sets
// from the pinned maps, so one object serves every layout.
type schemaGroup struct {
	Maps     []string
	Variable string
	Values   []string
}

var schemaGroups = []schemaGroup{{
	Maps:     []string{abi.MapCT4, abi.MapCTAny4},
	Variable: "hp_ct_layout",
	Values:   []string{"hp_ct_entry", "hp_ct_entry_v2"},
}}

func groupOf(name string) *schemaGroup {
	for i := range schemaGroups {
		if slices.Contains(schemaGroups[i].Maps, name) {
			return &schemaGroups[i]
		}
	}
	return nil
}

// Versioned tells whether shared map name has more than one layout.
func Versioned(name string) bool { return groupOf(name) != nil }

// Versions is the number of layouts of shared map name: its versions are
// 1..Versions(name). A map with one layout has version 1.
func Versions(name string) uint32 {
	if g := groupOf(name); g != nil {
		return uint32(len(g.Values))
	}
	return 1
}

// SchemaGroup names the maps that share name's layout version (name alone
// for a map with one layout): they migrate together.
func SchemaGroup(name string) []string {
	if g := groupOf(name); g != nil {
		return slices.Clone(g.Maps)
	}
	return []string{name}
}

// ErrNoVersion marks a layout version a map does not have.
var ErrNoVersion = errors.New("no such layout version")

// SpecVersion returns spec (shared map name as the abi object declares it)
// at layout version v: the same map with another value type.
func SpecVersion(spec *ebpf.MapSpec, name string, v uint32) (*ebpf.MapSpec, error) {
	if v == 0 || v > Versions(name) {
		return nil, fmt.Errorf("map %s layout %d: %w (have 1..%d)", name, v, ErrNoVersion, Versions(name))
	}
	if v == 1 {
		return spec, nil
	}
	typ, err := abiType(groupOf(name).Values[v-1])
	if err != nil {
		return nil, err
	}
	size, err := btf.Sizeof(typ)
	if err != nil {
		return nil, fmt.Errorf("size of %s: %w", typ.TypeName(), err)
	}
	out := spec.Copy()
	out.Value, out.ValueSize = typ, uint32(size)
	return out, nil
}

// abiSpec is read once: only its BTF types are used, never changed.
var abiSpec = sync.OnceValues(abi.LoadAbi)

// abiType looks up a type of bpf/lib/abi.h in the BTF of the abi object.
func abiType(name string) (btf.Type, error) {
	spec, err := abiSpec()
	if err != nil {
		return nil, fmt.Errorf("load abi spec: %w", err)
	}
	typ, err := spec.Types.AnyTypeByName(name)
	if err != nil {
		return nil, fmt.Errorf("abi type %s: %w", name, err)
	}
	return typ, nil
}

// VersionOf returns the layout version of m, the live shared map name whose
// version-1 spec is spec: the version whose value type m carries, checked
// in full. A map of no known layout is ErrIncompatible.
func VersionOf(spec *ebpf.MapSpec, name string, m *ebpf.Map) (uint32, error) {
	g := groupOf(name)
	if g == nil {
		return 1, checkExact(spec, m)
	}
	_, value, err := pinnedTypes(m)
	if err != nil {
		return 0, err
	}
	v := uint32(1)
	if value != nil {
		i := slices.Index(g.Values, value.TypeName())
		if i < 0 {
			return 0, fmt.Errorf("%w: value type %s is no layout of %s (have %s)", ErrIncompatible, describe(value), name, strings.Join(g.Values, ", "))
		}
		v = uint32(i + 1)
	}
	vs, err := SpecVersion(spec, name, v)
	if err != nil {
		return 0, err
	}
	return v, checkExact(vs, m)
}

// fitLayouts gives every versioned map of spec the layout of the live map it
// will be replaced with, and sets the group's load-time constant to that
// version, so the programs write beyond layout 1 only into maps that have
// room for it. The layouts differ in value size (a unit test keeps it so).
func fitLayouts(spec *ebpf.CollectionSpec, maps map[string]*ebpf.Map) {
	for _, g := range schemaGroups {
		for _, n := range g.Maps {
			ms, m := spec.Maps[n], maps[n]
			if ms == nil || m == nil {
				continue
			}
			v := versionBySize(ms, n, m.ValueSize())
			if v == 0 {
				continue // no layout of this size: the load fails on the size, saying so
			}
			if vs, err := SpecVersion(baseSpec(ms, n), n, v); err == nil {
				ms.Value, ms.ValueSize = vs.Value, vs.ValueSize
			}
			if vr := spec.Variables[g.Variable]; vr != nil {
				_ = vr.Set(v) // an object without the constant reads only layout 1's fields
			}
		}
	}
}

// baseSpec is ms as version 1 of map name.
func baseSpec(ms *ebpf.MapSpec, name string) *ebpf.MapSpec {
	specs, err := SharedSpecs()
	if err != nil || specs[name] == nil {
		return ms
	}
	b := ms.Copy()
	b.Value, b.ValueSize = specs[name].Value, specs[name].ValueSize
	return b
}

// versionBySize is the layout version of map name whose value has size
// bytes, or 0.
func versionBySize(ms *ebpf.MapSpec, name string, size uint32) uint32 {
	base := baseSpec(ms, name)
	for v := uint32(1); v <= Versions(name); v++ {
		if vs, err := SpecVersion(base, name, v); err == nil && vs.ValueSize == size {
			return v
		}
	}
	return 0
}

// LayoutOf is the layout version of m, a live shared map name already
// checked when it was opened (Check), told by its value size; 0: none
// matches. A map with one layout is version 1.
func LayoutOf(name string, m *ebpf.Map) uint32 {
	if !Versioned(name) {
		return 1
	}
	specs, err := SharedSpecs()
	if err != nil || specs[name] == nil {
		return 0
	}
	return versionBySize(specs[name], name, m.ValueSize())
}

// LayoutSize is the value size of layout v of shared map name, 0 if it has
// no such layout.
func LayoutSize(name string, v uint32) uint32 {
	specs, err := SharedSpecs()
	if err != nil || specs[name] == nil {
		return 0
	}
	vs, err := SpecVersion(specs[name], name, v)
	if err != nil {
		return 0
	}
	return vs.ValueSize
}
