package plugin

import (
	"fmt"

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
		out = append(out, MapSchema{Name: n, Type: s.Type.String(), KeySize: s.KeySize, ValueSize: s.ValueSize, MaxEntries: s.MaxEntries})
	}
	return out, nil
}
