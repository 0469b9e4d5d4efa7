package ctmap

import (
	"testing"
	"unsafe"

	"github.com/hotpath/hotpath/core/abi"
)

func raw(e abi.CTEntry) []byte {
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(&e)), unsafe.Sizeof(e))...)
}

// Merge adds the old map's increase since the copy, keeps the later
// lifetime, ors the flags and keeps the new map's translation fields;
// MergeMax, without a baseline, takes the larger counters.
func TestMergeRules(t *testing.T) {
	cur := abi.CTEntry{Packets: 110, Bytes: 11000, Lifetime: 500, Flags: 0x1, BackendId: 7, TxFlagsSeen: 0x02}
	now := abi.CTEntry{Packets: 103, Bytes: 10300, Lifetime: 600, Flags: 0x4, BackendId: 9, RxFlagsSeen: 0x10}
	base := abi.CTEntry{Packets: 100, Bytes: 10000, Lifetime: 400}
	got := *entryOf(Merge(raw(cur), raw(now), raw(base)))
	want := abi.CTEntry{Packets: 113, Bytes: 11300, Lifetime: 600, Flags: 0x5, BackendId: 7, TxFlagsSeen: 0x02, RxFlagsSeen: 0x10}
	if got != want {
		t.Errorf("Merge: %+v, want %+v", got, want)
	}
	if got := *entryOf(Merge(nil, raw(now), nil)); got != now {
		t.Errorf("Merge into a missing entry: %+v, want the old map's %+v", got, now)
	}
	if got := *entryOf(Merge(raw(cur), raw(now), nil)); got.Packets != 213 {
		t.Errorf("Merge of an entry both generations created: %d packets, want 213", got.Packets)
	}
	got = *entryOf(MergeMax(raw(cur), raw(now), nil))
	if got.Packets != 110 || got.Bytes != 11000 || got.Lifetime != 600 || got.Flags != 0x5 {
		t.Errorf("MergeMax: %+v", got)
	}
	if Merge(raw(cur), []byte{1, 2, 3}, nil) != nil {
		t.Error("Merge of a value of another layout wrote something")
	}
}
