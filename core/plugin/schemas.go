package plugin

import (
	"fmt"
	"slices"

	"github.com/hotpath/hotpath/core/pin"
)

// Schemas describes the named shared maps as this build of the SDK declares
// them (bpf/lib/maps.h): what a plugin returns in Description.Maps, and what
// the supervisor checks against the pinned maps.
func Schemas(names ...string) ([]MapSchema, error) {
	specs, err := pin.SharedSpecs()
	if err != nil {
		return nil, err
	}
	var out []MapSchema
	for _, n := range names {
		s, ok := specs[n]
		if !ok {
			return nil, fmt.Errorf("no shared map %s", n)
		}
		size := s.MaxEntries
		if pin.Sizable[n] {
			size = 0 // any: the supervisor's config sets it
		}
		out = append(out, MapSchema{Name: n, Type: s.Type.String(), KeySize: s.KeySize, ValueSize: s.ValueSize, MaxEntries: size})
	}
	return out, nil
}

// Own declares that the plugin owns the content of the named shared maps
// and that its programs write layout version v of them (bpf/lib/abi.h): it
// sets Version and the value size of that layout in schemas. The maps a
// layout version spans (pin.SchemaGroup) are declared together. When the
// pinned maps have another layout, `hotpath plugin upgrade` to this build
// migrates them, and back on a rollback; a plugin that only reads a map
// declares no version and its loader fits the programs to the pinned
// layout (pin.Fit).
func Own(schemas []MapSchema, v uint32, names ...string) error {
	specs, err := pin.SharedSpecs()
	if err != nil {
		return err
	}
	for _, n := range names {
		i := slices.IndexFunc(schemas, func(s MapSchema) bool { return s.Name == n })
		if i < 0 {
			return fmt.Errorf("own map %s: not among the maps declared", n)
		}
		for _, g := range pin.SchemaGroup(n) {
			if !slices.Contains(names, g) {
				return fmt.Errorf("own map %s: its layout is shared with %s, declare both", n, g)
			}
		}
		vs, err := pin.SpecVersion(specs[n], n, v)
		if err != nil {
			return fmt.Errorf("own map %s: %w", n, err)
		}
		schemas[i].Version, schemas[i].ValueSize = v, vs.ValueSize
	}
	return nil
}
