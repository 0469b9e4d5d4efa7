package ctmap

import (
	"testing"
	"unsafe"
)

func raw2(e *Entry) []byte {
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(e)), layout2Size)...)
}

// Old-generation writes after the last pass merge into a layout-2 entry:
// every counter, layout 2's included, carries the old map's increase.
func TestMergeLayoutsCarriesEveryCounter(t *testing.T) {
	base := Entry{Packets: 10, Bytes: 1000, RxPackets: 4, RxBytes: 400, Lifetime: 50, LastSeen: 20}
	now := Entry{Packets: 13, Bytes: 1300, RxPackets: 5, RxBytes: 500, Lifetime: 60, LastSeen: 30, Flags: 4}
	cur := Entry{Packets: 11, Bytes: 1100, RxPackets: 4, RxBytes: 400, Lifetime: 55, LastSeen: 25}
	var got Entry
	decode(&got, MergeLayouts(raw2(&cur), raw2(&now), raw2(&base)))
	want := Entry{Packets: 14, Bytes: 1400, RxPackets: 5, RxBytes: 500, Lifetime: 60, LastSeen: 30, Flags: 4}
	if got != want {
		t.Fatalf("merged %+v, want %+v", got, want)
	}
	// An entry the new map lacks is taken as it is; layout 1 is Merge's.
	decode(&got, MergeLayouts(nil, raw2(&now), nil))
	if got != now {
		t.Fatalf("merged into nothing: %+v, want %+v", got, now)
	}
	if MergeLayouts(raw2(&cur)[:layout1Size], raw2(&now), nil) != nil {
		t.Fatal("merged values of two layouts")
	}
}

func TestFixupIntoLayout2(t *testing.T) {
	e := Entry{LastTxReport: 7, LastRxReport: 9, Created: 3}
	v := raw2(&e)
	Fixup(1, 2)(v)
	decode(&e, v)
	if e.LastSeen != 9 {
		t.Fatalf("last_seen after the migration %d, want the latest report 9", e.LastSeen)
	}
	if Fixup(2, 1) != nil {
		t.Fatal("layout 2 -> 1 needs no fixup: dropping fields is what names say")
	}
}
