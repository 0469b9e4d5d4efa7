package lb

import (
	"fmt"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/lab"
)

// The two layouts issue 14 names for many Maglev tables, measured on the
// kernel (README.md has the numbers):
//
//	go test -run '^$' -bench PrivilegedMaglevLayout -benchtime 1x ./plugins/lb
//
// Each op writes layoutTables tables of M=16381 ids, then changes one of
// them; both are reported per op. Kernel side only: no table build, no
// service value beyond the one update that publishes a table.

const (
	layoutTables = 1000
	layoutM      = 16381
)

func BenchmarkPrivilegedMaglevLayout(b *testing.B) {
	lab.Privileged(b)
	table := make([]uint32, layoutM)
	for i := range table {
		table[i] = uint32(1 + i%3)
	}
	for _, l := range []struct {
		name  string
		setup func(b *testing.B) layout
	}{
		{"map-in-map/one-update-per-table", func(b *testing.B) layout { return newMapInMap(b, false, false) }},
		{"map-in-map/one-batched-update", func(b *testing.B) layout { return newMapInMap(b, true, false) }},
		{"map-in-map/one-batched-update/mmap", func(b *testing.B) layout { return newMapInMap(b, true, true) }},
		{"chunk-array/batch-update", func(b *testing.B) layout { return newChunkArray(b, false) }},
		{"chunk-array/mmap", func(b *testing.B) layout { return newChunkArray(b, true) }},
	} {
		b.Run(l.name, func(b *testing.B) {
			var all, one time.Duration
			for range b.N {
				lay := l.setup(b)
				start := time.Now()
				if err := lay.writeAll(table); err != nil {
					b.Fatal(err)
				}
				all += time.Since(start)
				start = time.Now()
				if err := lay.change(7, table); err != nil {
					b.Fatal(err)
				}
				one += time.Since(start)
				lay.close()
			}
			b.ReportMetric(all.Seconds()*1000/float64(b.N), fmt.Sprintf("ms/%d-tables", layoutTables))
			b.ReportMetric(one.Seconds()*1000/float64(b.N), "ms/change")
		})
	}
}

type layout interface {
	writeAll(table []uint32) error
	change(svc uint32, table []uint32) error
	close()
}

// mapInMap is the old layout: one inner ARRAY per service in a
// HASH_OF_MAPS; every update of the outer map waits for an RCU grace period.
type mapInMap struct {
	outer         *ebpf.Map
	inner         *ebpf.MapSpec
	batched, mmap bool
}

func newMapInMap(b *testing.B, batched, mmap bool) layout {
	const innerMap, mmapable = 1 << 12, 1 << 10 // BPF_F_INNER_MAP, BPF_F_MMAPABLE
	inner := &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: layoutM, Flags: innerMap}
	if mmap {
		inner.Flags |= mmapable
	}
	outer, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.HashOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 65536, InnerMap: inner})
	if err != nil {
		b.Fatal(err)
	}
	return &mapInMap{outer: outer, inner: inner, batched: batched, mmap: mmap}
}

func (l *mapInMap) table(t []uint32) (*ebpf.Map, error) {
	m, err := ebpf.NewMap(l.inner)
	if err != nil {
		return nil, err
	}
	if l.mmap {
		// An ARRAY of 4-byte values has 8-byte elements.
		mem, err := m.Memory()
		if err != nil {
			m.Close()
			return nil, err
		}
		wide := make([]uint64, len(t))
		for i, id := range t {
			wide[i] = uint64(id)
		}
		if _, err := mem.WriteAt(unsafe.Slice((*byte)(unsafe.Pointer(&wide[0])), 8*len(wide)), 0); err != nil {
			m.Close()
			return nil, err
		}
		return m, nil
	}
	keys := make([]uint32, len(t))
	for i := range keys {
		keys[i] = uint32(i)
	}
	if _, err := m.BatchUpdate(keys, t, nil); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func (l *mapInMap) writeAll(t []uint32) error {
	inners := make([]*ebpf.Map, 0, layoutTables)
	defer func() {
		for _, m := range inners {
			m.Close()
		}
	}()
	keys, fds := make([]uint32, layoutTables), make([]uint32, layoutTables)
	for i := range layoutTables {
		m, err := l.table(t)
		if err != nil {
			return err
		}
		inners = append(inners, m)
		keys[i], fds[i] = uint32(i+1), uint32(m.FD())
		if !l.batched {
			if err := l.outer.Put(keys[i], m); err != nil {
				return err
			}
		}
	}
	if l.batched {
		_, err := l.outer.BatchUpdate(keys, fds, nil)
		return err
	}
	return nil
}

func (l *mapInMap) change(svc uint32, t []uint32) error {
	m, err := l.table(t)
	if err != nil {
		return err
	}
	defer m.Close()
	return l.outer.Put(svc, m)
}

func (l *mapInMap) close() { l.outer.Close() }

// chunkArray is the layout in use: one ARRAY of 16-id chunks, a table at a
// per-service offset, published by a service value update.
type chunkArray struct {
	arr, svcs *ebpf.Map
	mmap      bool
	next      uint32
}

func newChunkArray(b *testing.B, mmap bool) layout {
	specs, err := pin.SharedSpecs()
	if err != nil {
		b.Fatal(err)
	}
	arr, err := ebpf.NewMap(specs[abi.AbiMapLb4Maglev])
	if err != nil {
		b.Fatal(err)
	}
	svcs, err := ebpf.NewMap(specs[abi.AbiMapLb4Services])
	if err != nil {
		b.Fatal(err)
	}
	return &chunkArray{arr: arr, svcs: svcs, mmap: mmap, next: 1}
}

func (l *chunkArray) write(svc uint32, t []uint32) error {
	ms := &Maps{Maglev: l.arr}
	off := l.next
	l.next += chunksFor(uint32(len(t)))
	if l.mmap {
		if err := ms.writeTable(off, t); err != nil {
			return err
		}
	} else {
		n := chunksFor(uint32(len(t)))
		keys, vals := make([]uint32, n), make([]abi.MaglevChunk, n)
		for i := range keys {
			keys[i] = off + uint32(i)
			copy(vals[i].Backend[:], t[i*int(chunkIDs):])
		}
		if _, err := l.arr.BatchUpdate(keys, vals, nil); err != nil {
			return err
		}
	}
	return l.svcs.Put(abi.LB4Key{Address: svc}, abi.LB4Service{SvcId: svc, MaglevSize: uint32(len(t)), MaglevOffset: off})
}

func (l *chunkArray) writeAll(t []uint32) error {
	for i := range layoutTables {
		if err := l.write(uint32(i+1), t); err != nil {
			return err
		}
	}
	return nil
}

func (l *chunkArray) change(svc uint32, t []uint32) error { return l.write(svc, t) }

func (l *chunkArray) close() { l.arr.Close(); l.svcs.Close() }
