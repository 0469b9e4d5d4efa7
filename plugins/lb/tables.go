package lb

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/services"
)

// Maglev tables live side by side in the one ARRAY lb4_maglev (Katran's
// layout): a service value names its table by chunk offset and M. Changing
// a table writes the new one to clean chunks and then updates the service
// value, one map update a packet sees whole; the old chunks are reused
// only after an RCU grace period (space). Measured against one inner map
// per service, swapped or batch-inserted into a map-in-map, in README.md.

const chunkIDs = abi.MaglevChunkIDs

// chunksFor is how many lb4_maglev chunks a table of m ids fills.
func chunksFor(m uint32) uint32 { return (m + chunkIDs - 1) / chunkIDs }

// tableOf is the region a service value names, zero for none.
func tableOf(v abi.LB4Service) extent {
	if v.MaglevOffset == 0 {
		return extent{}
	}
	return extent{v.MaglevOffset, chunksFor(v.MaglevSize)}
}

// writeTable writes table at chunk off. The region must be unused:
// readers see it only once a service value names it. lb4_maglev is
// mmapable, so this is one memory copy (a batch update of the chunks costs
// ~30x more, see README.md).
func (ms *Maps) writeTable(off uint32, table []uint32) error {
	mem, err := ms.Maglev.Memory()
	if err != nil {
		return fmt.Errorf("map lb4_maglev: %w", err)
	}
	if _, err := mem.WriteAt(idBytes(table), int64(off)*chunkBytes); err != nil {
		return fmt.Errorf("write maglev table at chunk %d (+%d): %w", off, chunksFor(uint32(len(table))), err)
	}
	return nil
}

// readTable reads the table of m ids at chunk off.
func (ms *Maps) readTable(off, m uint32) ([]uint32, error) {
	mem, err := ms.Maglev.Memory()
	if err != nil {
		return nil, fmt.Errorf("map lb4_maglev: %w", err)
	}
	out := make([]uint32, m)
	if _, err := mem.ReadAt(idBytes(out), int64(off)*chunkBytes); err != nil {
		return nil, fmt.Errorf("read maglev table at chunk %d: %w", off, err)
	}
	return out, nil
}

const chunkBytes = int64(unsafe.Sizeof(abi.MaglevChunk{}))

// idBytes is the memory of ids: host byte order, as the kernel's array.
func idBytes(ids []uint32) []byte {
	if len(ids) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&ids[0])), 4*len(ids))
}

// tables returns the allocator of lb4_maglev, reading which regions are in
// use from lb4_services the first time.
func (s *Store) tables() (*space, error) {
	if s.space != nil {
		return s.space, nil
	}
	var used []extent
	var k abi.LB4Key
	var v abi.LB4Service
	it := s.maps.Services.Iterate()
	for it.Next(&k, &v) {
		if e := tableOf(v); e.n > 0 {
			used = append(used, e)
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read maglev table offsets: %w", err)
	}
	sp, err := newSpace(s.maps.Maglev.MaxEntries(), used, s.maps.grace)
	if err != nil {
		return nil, err
	}
	s.space = sp
	return sp, nil
}

// Table returns the Maglev table a service's value names and its first
// chunk in lb4_maglev (nil and 0: none).
func (s *Store) Table(vip services.VIP) ([]uint32, uint32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var val abi.LB4Service
	if err := s.maps.Services.Lookup(keyOf(vip), &val); err != nil {
		return nil, 0, fmt.Errorf("service %s: %w", vip, err)
	}
	if val.MaglevOffset == 0 {
		return nil, 0, nil
	}
	t, err := s.maps.readTable(val.MaglevOffset, val.MaglevSize)
	return t, val.MaglevOffset, err
}

// newGrace returns a private ARRAY_OF_MAPS and the inner map it holds. An
// update of a map-in-map returns only after an RCU grace period (the
// kernel waits for every running BPF program, so that none still sees the
// old inner map): exactly the wait a freed table region needs before it
// is reused, and the only reason this map exists.
func newGrace() (outer, inner *ebpf.Map, err error) {
	innerSpec := &ebpf.MapSpec{Name: "lb_grace_in", Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1}
	if inner, err = ebpf.NewMap(innerSpec); err != nil {
		return nil, nil, fmt.Errorf("create grace map: %w", err)
	}
	outer, err = ebpf.NewMap(&ebpf.MapSpec{Name: "lb_grace", Type: ebpf.ArrayOfMaps, KeySize: 4, ValueSize: 4,
		MaxEntries: 1, InnerMap: innerSpec})
	if err != nil {
		inner.Close()
		return nil, nil, fmt.Errorf("create grace map: %w", err)
	}
	return outer, inner, nil
}

// grace waits for an RCU grace period: every BPF program running now has
// finished when it returns.
func (ms *Maps) grace() error {
	if ms.graceOuter == nil {
		return errors.New("no grace map")
	}
	return ms.graceOuter.Put(uint32(0), ms.graceInner)
}
