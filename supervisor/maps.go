package supervisor

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/pin"
)

// Maps are the shared maps, created or re-opened under the pin root.
type Maps struct {
	ByName  map[string]*ebpf.Map
	Created []string // names created by this call; the rest were re-opened
	IDs     map[string]ebpf.MapID
}

// OpenMaps creates or re-opens every shared map. A pinned map that does not
// match its spec stops the supervisor with an error naming the map and what
// differs; nothing is recreated and the pin stays as it was.
func OpenMaps(l pin.Layout) (*Maps, error) { return OpenMapsSized(l, nil) }

// OpenMapsSized is OpenMaps with the sizes of config "map_sizes" for the
// sizable maps (pin.Sizable). A pinned map of another size is refused like
// any other difference.
func OpenMapsSized(l pin.Layout, sizes map[string]uint32) (*Maps, error) {
	maps, created, err := pin.OpenAllShared(l, sizes)
	if err != nil {
		return nil, err
	}
	ms := &Maps{ByName: maps, Created: created, IDs: make(map[string]ebpf.MapID, len(maps))}
	for name, m := range maps {
		info, err := m.Info()
		if err != nil {
			ms.Close()
			return nil, fmt.Errorf("map %s info: %w", name, err)
		}
		ms.IDs[name], _ = info.ID()
	}
	return ms, nil
}

// Close drops this process's references; the pins keep the maps alive.
func (ms *Maps) Close() {
	pin.CloseAll(ms.ByName)
}
