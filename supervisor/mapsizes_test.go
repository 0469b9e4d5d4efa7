package supervisor

import (
	"strings"
	"testing"

	"github.com/hotpath/hotpath/core/pin"
)

func TestMapSizesRefuseUnknownMapsAndBadSizes(t *testing.T) {
	for want, sizes := range map[string]map[string]uint32{
		"frag4 is not a sizable": {"frag4": 4096},
		"want 1024..":            {"nat4": 10},
	} {
		c := Config{BPFFS: "/b", StateDir: "/s", MapSizes: sizes}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "map_sizes") || !strings.Contains(err.Error(), strings.Fields(want)[0]) {
			t.Errorf("map_sizes %v: %v", sizes, err)
		}
	}
	ok := Config{BPFFS: "/b", StateDir: "/s", MapSizes: map[string]uint32{"nat4": 1 << 20}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	specs, err := pin.SharedSpecs()
	if err != nil {
		t.Fatal(err)
	}
	sized, err := pin.Sized(specs, ok.MapSizes)
	if err != nil || sized["nat4"].MaxEntries != 1<<20 || specs["nat4"].MaxEntries == 1<<20 {
		t.Fatalf("sized nat4: %v, %v (the shared spec must stay as compiled)", sized["nat4"], err)
	}
}
