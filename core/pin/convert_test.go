package pin_test

import (
	"errors"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/lab"
)

// ctMap creates an unpinned ct4 of layout v with room for n entries.
func ctLayoutMap(t *testing.T, v uint32, n uint32) *ebpf.Map {
	t.Helper()
	specs, err := pin.SharedSpecs()
	if err != nil {
		t.Fatal(err)
	}
	s, err := pin.SpecVersion(specs[abi.MapCT4], abi.MapCT4, v)
	if err != nil {
		t.Fatal(err)
	}
	s = s.Copy()
	s.Pinning, s.MaxEntries = ebpf.PinNone, n
	m, err := ebpf.NewMap(s)
	if err != nil {
		t.Fatalf("create ct4 layout %d: %v", v, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func bytesOf[T any](v *T) []byte { return unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v)) }

// migrate copies every entry of src into dst through c, key by key.
func migrate(t *testing.T, c *pin.Converter, dst, src *ebpf.Map) int {
	t.Helper()
	k, v := make([]byte, src.KeySize()), make([]byte, src.ValueSize())
	it := src.Iterate()
	n := 0
	for it.Next(&k, &v) {
		ck, cv, err := c.Entry(k, v)
		if err != nil {
			t.Fatal(err)
		}
		if err := dst.Put(ck, cv); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPrivilegedConvertCTLayoutsUpAndDown(t *testing.T) {
	lab.Privileged(t)
	const n = 1000
	// LRU maps hold slightly fewer entries than their size: room to spare.
	v1, v2, back := ctLayoutMap(t, 1, 4*n), ctLayoutMap(t, 2, 4*n), ctLayoutMap(t, 1, 4*n)
	for i := uint32(0); i < n; i++ {
		k := abi.CTTuple{Saddr: i, Daddr: ^i, Sport: 1, Dport: 2, Nexthdr: 6}
		e := abi.CTEntry{Packets: uint64(i) + 1, Bytes: uint64(i) * 100, Lifetime: i + 7, Flags: abi.CTSeenNonSyn,
			RevNatIndex: uint16(i), TxFlagsSeen: 0x12, RxFlagsSeen: 0x10, BackendId: i * 3, SrcSecId: 9,
			LastTxReport: 11, LastRxReport: 12, Created: 5}
		if err := v1.Put(&k, &e); err != nil {
			t.Fatal(err)
		}
	}
	up, err := pin.MapConverter(v1, v2)
	if err != nil {
		t.Fatalf("plan v1 -> v2: %v", err)
	}
	t.Logf("v1 -> v2 %s", up)
	if len(up.Added) != 4 || len(up.Dropped) != 0 {
		t.Fatalf("v1 -> v2 adds %v, drops %v; want the 4 new fields added", up.Added, up.Dropped)
	}
	if got := migrate(t, up, v2, v1); got != n {
		t.Fatalf("migrated %d entries up, want %d", got, n)
	}
	// The datapath of layout 2 counts replies: give every entry some.
	var k abi.CTTuple
	var e2 abi.AbiHpCtEntryV2
	var keys []abi.CTTuple // updated after the walk: an update may move an entry under the iterator
	it := v2.Iterate()
	for it.Next(&k, &e2) {
		keys = append(keys, k)
	}
	for _, k := range keys {
		if err := v2.Lookup(&k, &e2); err != nil {
			t.Fatal(err)
		}
		var want abi.CTEntry
		if err := v1.Lookup(&k, &want); err != nil {
			t.Fatal(err)
		}
		if got := *(*abi.CTEntry)(unsafe.Pointer(&e2)); got != want {
			t.Fatalf("entry %+v: layout 2 carries %+v, want %+v", k, got, want)
		}
		if e2.RxPackets != 0 || e2.RxBytes != 0 || e2.LastSeen != 0 {
			t.Fatalf("entry %+v: new fields not zero: %+v", k, e2)
		}
		e2.RxPackets, e2.Packets = 1, e2.Packets+1
		if err := v2.Update(&k, &e2, ebpf.UpdateExist); err != nil {
			t.Fatal(err)
		}
	}
	down, err := pin.MapConverter(v2, back)
	if err != nil {
		t.Fatalf("plan v2 -> v1: %v", err)
	}
	t.Logf("v2 -> v1 %s", down)
	if len(down.Dropped) != 4 || len(down.Added) != 0 {
		t.Fatalf("v2 -> v1 drops %v, adds %v; want the 4 new fields dropped", down.Dropped, down.Added)
	}
	if got := migrate(t, down, back, v2); got != n {
		t.Fatalf("migrated %d entries down, want %d", got, n)
	}
	var e1 abi.CTEntry
	it = v1.Iterate()
	for it.Next(&k, &e1) {
		var got abi.CTEntry
		if err := back.Lookup(&k, &got); err != nil {
			t.Fatalf("entry %+v lost in v1 -> v2 -> v1: %v", k, err)
		}
		want := e1
		want.Packets++ // counted while in layout 2
		if got != want {
			t.Fatalf("entry %+v after v1 -> v2 -> v1 is %+v, want %+v", k, got, want)
		}
	}
}

func TestPrivilegedConvertRefusesAnotherKey(t *testing.T) {
	lab.Privileged(t)
	v1 := ctLayoutMap(t, 1, 16)
	specs, err := pin.SharedSpecs()
	if err != nil {
		t.Fatal(err)
	}
	// Same key size, another key layout: the tuple with its fields swapped.
	s, _ := pin.SpecVersion(specs[abi.MapCT4], abi.MapCT4, 2)
	s = s.Copy()
	s.Pinning, s.MaxEntries, s.Key = ebpf.PinNone, 16, swapped(t, s.Key)
	other, err := ebpf.NewMap(s)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, err = pin.MapConverter(v1, other)
	if !errors.Is(err, pin.ErrUnconvertible) {
		t.Fatalf("MapConverter with another key = %v, want ErrUnconvertible", err)
	}
	t.Log(err)
}

// A field that changes type cannot be carried by name.
func TestConverterRefusesChangedFieldType(t *testing.T) {
	u32 := &btf.Int{Name: "u32", Size: 4}
	u64 := &btf.Int{Name: "u64", Size: 8}
	from := &btf.Struct{Name: "v", Size: 8, Members: []btf.Member{{Name: "a", Type: u32}, {Name: "b", Type: u32, Offset: 32}}}
	to := &btf.Struct{Name: "v", Size: 12, Members: []btf.Member{{Name: "a", Type: u32}, {Name: "b", Type: u64, Offset: 32}}}
	if _, err := pin.NewConverter(from, to); !errors.Is(err, pin.ErrUnconvertible) {
		t.Fatalf("NewConverter across a changed field type = %v, want ErrUnconvertible", err)
	}
	// Reordered fields convert by name.
	swap := &btf.Struct{Name: "w", Size: 8, Members: []btf.Member{{Name: "b", Type: u32}, {Name: "a", Type: u32, Offset: 32}}}
	c, err := pin.NewConverter(from, swap)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 8)
	c.Convert(dst, []byte{1, 0, 0, 0, 2, 0, 0, 0})
	if dst[0] != 2 || dst[4] != 1 {
		t.Fatalf("reordered fields converted to %v, want b then a", dst)
	}
}

// Fit tells layouts apart by value size: they must all differ.
func TestLayoutsDifferInSize(t *testing.T) {
	specs, err := pin.SharedSpecs()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{abi.MapCT4, abi.MapCTAny4} {
		seen := map[uint32]uint32{}
		for v := uint32(1); v <= pin.Versions(name); v++ {
			s, err := pin.SpecVersion(specs[name], name, v)
			if err != nil {
				t.Fatal(err)
			}
			if o, dup := seen[s.ValueSize]; dup {
				t.Fatalf("%s layouts %d and %d both have %d-byte values", name, o, v, s.ValueSize)
			}
			seen[s.ValueSize] = v
		}
		if len(seen) < 2 {
			t.Fatalf("%s has %d layouts, want 2 or more", name, len(seen))
		}
	}
	if _, err := pin.SpecVersion(specs[abi.MapCT4], abi.MapCT4, 9); !errors.Is(err, pin.ErrNoVersion) {
		t.Fatalf("layout 9 of ct4 = %v, want ErrNoVersion", err)
	}
}

func TestPrivilegedVersionOfAndCheckAcceptEveryLayout(t *testing.T) {
	lab.Privileged(t)
	specs, err := pin.SharedSpecs()
	if err != nil {
		t.Fatal(err)
	}
	spec := specs[abi.MapCT4]
	for v := uint32(1); v <= pin.Versions(abi.MapCT4); v++ {
		m := ctLayoutMap(t, v, spec.MaxEntries)
		got, err := pin.VersionOf(spec, abi.MapCT4, m)
		if err != nil || got != v {
			t.Fatalf("VersionOf a layout-%d map = %d, %v", v, got, err)
		}
		if err := pin.Check(spec, m); err != nil {
			t.Fatalf("Check of a layout-%d map: %v", v, err)
		}
	}
}
