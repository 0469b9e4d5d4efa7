package ctmap

import (
	"fmt"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
)

// Entry is a CT value decoded from either layout of the CT maps: layout 1
// (abi.CTEntry) fills the fields the layouts share and leaves the rest zero.
type Entry = abi.CTEntryV2

const (
	layout1Size = int(unsafe.Sizeof(abi.CTEntry{}))
	layout2Size = int(unsafe.Sizeof(abi.CTEntryV2{}))
	tupleSize   = int(unsafe.Sizeof(abi.CTTuple{}))
)

// Layout is the layout version of a CT map's value, told by its size.
func Layout(m *ebpf.Map) (uint32, error) {
	switch int(m.ValueSize()) {
	case layout1Size:
		return 1, nil
	case layout2Size:
		return 2, nil
	}
	return 0, fmt.Errorf("ct map %s: %d-byte values are no layout this build knows (%d or %d)", m, m.ValueSize(), layout1Size, layout2Size)
}

// decode copies a value of either layout into e. Layout 2 repeats layout
// 1's fields at the same offsets (bpf/lib/abi.h asserts it), so a value is
// the prefix of Entry it fills.
func decode(e *Entry, row []byte) {
	*e = Entry{}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(e)), layout2Size), row)
}

// ScanEntries visits every entry of a CT map of either layout with batch
// lookups. fn sees copies; returning false stops.
func ScanEntries(m *ebpf.Map, fn func(k *abi.CTTuple, v *Entry) bool) error {
	if _, err := Layout(m); err != nil {
		return err
	}
	var e Entry
	return pin.ScanRaw(m, func(k *abi.CTTuple, row []byte) bool {
		decode(&e, row)
		return fn(k, &e)
	})
}

// Scan visits every entry of a CT map of either layout, seen as layout 1:
// what every reader of CT state needs. fn sees copies; returning false
// stops.
func Scan(m *ebpf.Map, fn func(k *abi.CTTuple, v *abi.CTEntry) bool) error {
	return ScanEntries(m, func(k *abi.CTTuple, v *Entry) bool {
		return fn(k, Common(v))
	})
}

// Common is the part of e both layouts have.
func Common(e *Entry) *abi.CTEntry { return (*abi.CTEntry)(unsafe.Pointer(e)) }

// Lookup reads the entry of k from a CT map of either layout.
func Lookup(m *ebpf.Map, k *abi.CTTuple) (Entry, error) {
	var e Entry
	if _, err := Layout(m); err != nil {
		return e, err
	}
	row := make([]byte, m.ValueSize())
	if err := m.Lookup(k, row); err != nil {
		return e, err
	}
	decode(&e, row)
	return e, nil
}
