package pin_test

import (
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/lab"
)

func ctMap(t *testing.T, size uint32) *ebpf.Map {
	t.Helper()
	specs, err := pin.SharedSpecs()
	if err != nil {
		t.Fatal(err)
	}
	s := specs[abi.MapCT4].Copy()
	s.MaxEntries, s.Pinning = size, ebpf.PinNone
	m, err := ebpf.NewMap(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func tuple(i int) abi.CTTuple {
	return abi.CTTuple{Saddr: uint32(i) + 1, Daddr: 0x0a000001, Sport: uint16(i), Dport: 80, Nexthdr: 6}
}

func entry(t *testing.T, m *ebpf.Map, i int) (abi.CTEntry, bool) {
	t.Helper()
	var e abi.CTEntry
	k := tuple(i)
	err := m.Lookup(&k, &e)
	return e, err == nil
}

// Copy, Delta and Merge carry every entry, every change made before the
// switch, and every increase made after it, with CT counters that never go
// back: the mechanism under `hotpath map resize`.
func TestPrivilegedCopyDeltaMerge(t *testing.T) {
	lab.Privileged(t)
	const n = 3*pin.BatchSize + 77
	src, dst := ctMap(t, 4*n), ctMap(t, 8*n)
	keys := make([]abi.CTTuple, n)
	vals := make([]abi.CTEntry, n)
	for i := range keys {
		keys[i], vals[i] = tuple(i), abi.CTEntry{Packets: uint64(i), Bytes: uint64(i) * 100, Lifetime: 1000}
	}
	if _, err := src.BatchUpdate(keys, vals, nil); err != nil {
		t.Fatal(err)
	}
	snap, st, err := pin.Copy(dst, src, nil)
	if err != nil || st.Entries != n || st.Written != n || snap.Len() != n {
		t.Fatalf("copy: %+v, %v", st, err)
	}
	// Before the switch: one entry changes, one is new, one goes.
	put := func(m *ebpf.Map, i int, e abi.CTEntry) {
		k := tuple(i)
		if err := m.Put(&k, &e); err != nil {
			t.Fatal(err)
		}
	}
	put(src, 5, abi.CTEntry{Packets: 50, Bytes: 5000, Lifetime: 2000})
	put(src, n+1, abi.CTEntry{Packets: 1, Bytes: 60, Lifetime: 2000})
	k7 := tuple(7)
	if err := src.Delete(&k7); err != nil {
		t.Fatal(err)
	}
	st, err = snap.Delta(dst, src, nil)
	if err != nil || st.Written != 2 || st.Deleted != 1 {
		t.Fatalf("delta: %+v, %v; want 2 written, 1 deleted", st, err)
	}
	if e, ok := entry(t, dst, 5); !ok || e.Packets != 50 {
		t.Errorf("entry 5 after delta: %+v %v", e, ok)
	}
	if _, ok := entry(t, dst, 7); ok {
		t.Errorf("entry 7 deleted in the source is still in the copy")
	}
	// After the switch both maps count: the new one from the new
	// generation, the old one from packets still in flight.
	put(dst, 5, abi.CTEntry{Packets: 53, Bytes: 5300, Lifetime: 3000})
	put(src, 5, abi.CTEntry{Packets: 52, Bytes: 5200, Lifetime: 2500, Flags: abi.CTSeenNonSyn})
	put(src, n+2, abi.CTEntry{Packets: 2, Bytes: 120, Lifetime: 2500})
	put(src, 9, abi.CTEntry{Packets: 9 + 4, Bytes: 900 + 400, Lifetime: 1000})
	put(dst, 9, abi.CTEntry{Packets: 9 + 1, Bytes: 900 + 100, Lifetime: 1500})
	st, err = snap.Merge(dst, src, nil, ctmap.Merge)
	if err != nil || st.Written != 3 {
		t.Fatalf("merge: %+v, %v; want 3 written", st, err)
	}
	want := map[int]abi.CTEntry{
		5:     {Packets: 55, Bytes: 5500, Lifetime: 3000, Flags: abi.CTSeenNonSyn},
		9:     {Packets: 14, Bytes: 1400, Lifetime: 1500},
		n + 1: {Packets: 1, Bytes: 60, Lifetime: 2000},
		n + 2: {Packets: 2, Bytes: 120, Lifetime: 2500},
		100:   {Packets: 100, Bytes: 10000, Lifetime: 1000},
	}
	for i, w := range want {
		if e, ok := entry(t, dst, i); !ok || e != w {
			t.Errorf("entry %d: %+v (present %v), want %+v", i, e, ok, w)
		}
	}
	if c, err := pin.Count(dst); err != nil || c != n+1 {
		t.Errorf("destination holds %d entries (%v), want %d", c, err, n+1)
	}
}

// A conversion rewrites every entry into the destination's layout; a
// conversion that fails stops the copy with the entry's error.
func TestPrivilegedCopyConvert(t *testing.T) {
	lab.Privileged(t)
	src := ctMap(t, 1024)
	wide, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 16, ValueSize: 56, MaxEntries: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer wide.Close()
	for i := 0; i < 100; i++ {
		k, v := tuple(i), abi.CTEntry{Packets: uint64(i)}
		if err := src.Put(&k, &v); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := pin.Copy(wide, src, nil); err == nil {
		t.Fatal("copy between layouts without a conversion succeeded")
	}
	grow := func(k, v []byte) ([]byte, []byte, error) { return k, append(v, make([]byte, 8)...), nil }
	if _, st, err := pin.Copy(wide, src, grow); err != nil || st.Written != 100 {
		t.Fatalf("converted copy: %+v, %v", st, err)
	}
	k := tuple(42)
	out := make([]byte, 56)
	if err := wide.Lookup(&k, out); err != nil {
		t.Fatal(err)
	}
	if e := (*abi.CTEntry)(unsafe.Pointer(&out[0])); e.Packets != 42 {
		t.Errorf("converted entry %+v", e)
	}
}

// A copy into a map too small for the entries fails and says so, in the
// kernel and in batches alike.
func TestPrivilegedCopyTooSmall(t *testing.T) {
	lab.Privileged(t)
	src := ctMap(t, 1024)
	for i := 0; i < 100; i++ {
		k, v := tuple(i), abi.CTEntry{Packets: uint64(i)}
		if err := src.Put(&k, &v); err != nil {
			t.Fatal(err)
		}
	}
	for _, conv := range []pin.Convert{nil, func(k, v []byte) ([]byte, []byte, error) { return k, v, nil }} {
		small, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 16, ValueSize: 48, MaxEntries: 10})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := pin.Copy(small, src, conv); err == nil {
			t.Errorf("copy of 100 entries into a 10-entry map succeeded (conversion %v)", conv != nil)
		}
		small.Close()
	}
}
