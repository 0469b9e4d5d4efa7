package pin

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"reflect"
	"slices"
	"time"

	"github.com/cilium/ebpf"
)

// Convert rewrites one entry of a source map into the layout of the
// destination map (a schema migration, up or down). It gets copies it may
// keep and returns the destination's key and value. A nil Convert copies
// the bytes as they are, which needs equal key and value sizes.
type Convert func(key, value []byte) ([]byte, []byte, error)

// Merge decides what an entry that old-generation packets wrote into the
// source after the last pass becomes in the destination, which the new
// generation writes meanwhile. cur is the destination's value (nil: absent
// there), now the source's value now, base the source's value at the last
// pass (nil: the entry is new since), all in the destination's layout. It
// returns the value to write, or nil to leave the destination as it is.
type Merge func(cur, now, base []byte) []byte

// CopyStats is what one pass over a source map did.
type CopyStats struct {
	Entries int           // source entries seen
	Written int           // destination entries written
	Deleted int           // destination entries deleted (gone from the source)
	Took    time.Duration // wall time of the pass
}

// Snapshot is every entry a Copy read from the source map, in the source's
// layout, indexed by key: the baseline the later passes compare with to
// find what changed. A 1M-entry CT map costs ~70 MB while it lives.
type Snapshot struct {
	ks, vs int
	keys   []byte // ks bytes per entry
	vals   []byte // vs bytes per entry
	n      int32
	seed   maphash.Seed
	// slots is an open-addressing index of the entries by key hash: entry
	// number + 1, 0 for an empty slot; a power of two, at most half full.
	slots []int32
	// cursor is where the next entry of a pass is expected: a map read
	// again comes back almost in the same order (bucket by bucket), so most
	// entries are found without hashing. Not when the snapshot was read
	// from another map (unordered): its order is the other map's.
	cursor    int32
	unordered bool
}

// copyBatch is the number of entries per batch lookup and update.
const copyBatch = BatchSize

// Copy writes every entry of src into dst and returns the snapshot of what
// it copied. Without a conversion it copies inside the kernel (kcopy.go)
// and reads the result back; with one (or where the kernel refuses the
// copy program) it uses batch lookups and batch updates, converting each
// entry with conv. Entries the datapath writes into src meanwhile may be missed or
// copied stale: Delta and Merge catch up with them. dst should be empty.
func Copy(dst, src *ebpf.Map, conv Convert) (*Snapshot, CopyStats, error) {
	start := time.Now()
	if conv == nil && (dst.KeySize() != src.KeySize() || dst.ValueSize() != src.ValueSize()) {
		return nil, CopyStats{}, fmt.Errorf("copy %s -> %s: key/value sizes %d/%d and %d/%d differ and no conversion given",
			src, dst, src.KeySize(), src.ValueSize(), dst.KeySize(), dst.ValueSize())
	}
	if conv == nil && src.KeySize() == dst.KeySize() && src.ValueSize() == dst.ValueSize() {
		if s, st, err := copyInKernel(dst, src); err == nil {
			st.Took = time.Since(start)
			return s, st, nil
		} else if !errors.Is(err, errNoKernelCopy) {
			return nil, st, fmt.Errorf("copy %s -> %s: %w", src, dst, err)
		}
	}
	s := NewSnapshot(src)
	w := newWriter(dst, conv)
	// Reads and writes overlap: the next batch is looked up while this
	// one is written, which is most of a copy's time on two CPUs.
	err := readAhead(src, func(keys, vals []byte, n int) error {
		for i := 0; i < n; i++ {
			k, v := keys[i*s.ks:(i+1)*s.ks], vals[i*s.vs:(i+1)*s.vs]
			s.add(k, v)
			if err := w.put(k, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = w.flush()
	}
	st := CopyStats{Entries: s.Len(), Written: w.written, Took: time.Since(start)}
	if err != nil {
		return nil, st, fmt.Errorf("copy %s -> %s: %w", src, dst, err)
	}
	return s, st, nil
}

// errNoKernelCopy: the kernel refused the in-kernel copy program; the
// batch copy does the work instead.
var errNoKernelCopy = errors.New("no in-kernel copy")

// copyInKernel copies src into dst inside the kernel, then reads dst back
// as the snapshot: nothing else writes dst before the switch, so it is
// exactly what was copied, in src's layout.
func copyInKernel(dst, src *ebpf.Map) (*Snapshot, CopyStats, error) {
	copied, failed, err := kernelCopy(dst, src)
	if err != nil {
		return nil, CopyStats{}, fmt.Errorf("%w: %v", errNoKernelCopy, err)
	}
	if failed {
		return nil, CopyStats{}, fmt.Errorf("in-kernel copy: entries did not fit (%d copied)", copied)
	}
	s := NewSnapshot(src)
	s.unordered = true
	s.grow(copied + copied/8)
	err = readAll(dst, func(keys, vals []byte, n int) error {
		for i := 0; i < n; i++ {
			s.add(keys[i*s.ks:(i+1)*s.ks], vals[i*s.vs:(i+1)*s.vs])
		}
		return nil
	})
	st := CopyStats{Entries: s.Len(), Written: copied}
	if err != nil {
		return nil, st, fmt.Errorf("read back the copy: %w", err)
	}
	return s, st, nil
}

// Delta brings dst up to what src holds now, for use while nothing but this
// process writes dst (before the datapath switches to it): entries created
// or changed in src since the snapshot are written, entries gone from src
// are deleted from dst. The snapshot becomes src as this pass read it.
func (s *Snapshot) Delta(dst, src *ebpf.Map, conv Convert) (CopyStats, error) {
	start := time.Now()
	s.cursor = 0
	seen := make([]bool, s.Len())
	// The pass's own reading becomes the snapshot, in src's order, so the
	// merge pass after the switch finds its entries in order.
	next := NewSnapshot(src)
	next.grow(s.Len() + s.Len()/8)
	w := newWriter(dst, conv)
	st := CopyStats{}
	err := readAll(src, func(keys, vals []byte, n int) error {
		for i := 0; i < n; i++ {
			k, v := keys[i*s.ks:(i+1)*s.ks], vals[i*s.vs:(i+1)*s.vs]
			st.Entries++
			next.add(k, v)
			j := s.find(k)
			if j >= 0 {
				seen[j] = true
				if bytes.Equal(s.val(j), v) {
					continue
				}
			}
			if err := w.put(k, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = w.flush()
	}
	st.Written = w.written
	if err == nil {
		st.Deleted, err = s.dropUnseen(dst, conv, seen)
	}
	st.Took = time.Since(start)
	if err != nil {
		return st, fmt.Errorf("delta %s -> %s: %w", src, dst, err)
	}
	*s = *next
	return st, nil
}

// Merge carries into dst what src gained since the snapshot while both were
// live (old-generation packets still in flight after the switch): for every
// entry created or changed in src, merge decides dst's value from dst's
// current one, src's now and src's at the snapshot. Entries gone from src
// stay in dst: the new generation may have refreshed them. A nil merge
// writes an entry only where dst lacks it.
func (s *Snapshot) Merge(dst, src *ebpf.Map, conv Convert, merge Merge) (CopyStats, error) {
	start := time.Now()
	s.cursor = 0
	st := CopyStats{}
	var changed [][2][]byte // key, value in src's layout
	var bases [][]byte
	err := readAll(src, func(keys, vals []byte, n int) error {
		for i := 0; i < n; i++ {
			k, v := keys[i*s.ks:(i+1)*s.ks], vals[i*s.vs:(i+1)*s.vs]
			st.Entries++
			var base []byte
			if j := s.find(k); j >= 0 {
				if bytes.Equal(s.val(j), v) {
					continue
				}
				base = bytes.Clone(s.val(j))
			}
			changed = append(changed, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
			bases = append(bases, base)
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("merge %s -> %s: %w", src, dst, err)
	}
	cur := make([]byte, dst.ValueSize())
	for i, kv := range changed {
		k, now, err := convert(conv, kv[0], kv[1])
		if err != nil {
			return st, fmt.Errorf("merge %s -> %s: %w", src, dst, err)
		}
		base := bases[i]
		if base != nil {
			if _, base, err = convert(conv, kv[0], base); err != nil {
				return st, fmt.Errorf("merge %s -> %s: %w", src, dst, err)
			}
		}
		var have []byte
		switch err := dst.Lookup(k, cur); {
		case err == nil:
			have = cur
		case !errors.Is(err, ebpf.ErrKeyNotExist):
			return st, fmt.Errorf("merge %s -> %s: lookup: %w", src, dst, err)
		}
		out := now
		if merge != nil {
			out = merge(have, now, base)
		} else if have != nil {
			out = nil
		}
		if out == nil {
			continue
		}
		if err := dst.Update(k, out, ebpf.UpdateAny); err != nil {
			return st, fmt.Errorf("merge %s -> %s: update: %w", src, dst, err)
		}
		st.Written++
	}
	st.Took = time.Since(start)
	return st, nil
}

// Len is the number of entries in the snapshot.
func (s *Snapshot) Len() int { return int(s.n) }

func (s *Snapshot) key(i int32) []byte { return s.keys[int(i)*s.ks : int(i+1)*s.ks] }
func (s *Snapshot) val(i int32) []byte { return s.vals[int(i)*s.vs : int(i+1)*s.vs] }

func (s *Snapshot) add(k, v []byte) {
	s.keys = append(s.keys, k...)
	s.vals = append(s.vals, v...)
	s.n++
	if int(s.n)*2 > len(s.slots) {
		s.rehash()
		return
	}
	s.insert(s.n - 1)
}

func (s *Snapshot) insert(i int32) {
	mask := uint64(len(s.slots) - 1)
	for h := maphash.Bytes(s.seed, s.key(i)) & mask; ; h = (h + 1) & mask {
		if s.slots[h] == 0 {
			s.slots[h] = i + 1
			return
		}
	}
}

// grow makes room for n entries at once, sparing the reallocations and
// rehashes of a snapshot built entry by entry.
func (s *Snapshot) grow(n int) {
	s.keys = slices.Grow(s.keys, n*s.ks)
	s.vals = slices.Grow(s.vals, n*s.vs)
	if n*2 > len(s.slots) {
		s.rehashFor(n)
	}
}

func (s *Snapshot) rehash() { s.rehashFor(int(s.n)) }

func (s *Snapshot) rehashFor(n int) {
	size := 1024
	for size < n*4 {
		size *= 2
	}
	s.slots = make([]int32, size)
	for i := int32(0); i < s.n; i++ {
		s.insert(i)
	}
}

// find returns the entry with key k, or -1; passes read entries in
// about the order they were added, so the entry after the last one found
// is tried first.
func (s *Snapshot) find(k []byte) int32 {
	if c := s.cursor; !s.unordered && c < s.n && bytes.Equal(s.key(c), k) {
		s.cursor++
		return c
	}
	if len(s.slots) == 0 {
		return -1
	}
	mask := uint64(len(s.slots) - 1)
	for h := maphash.Bytes(s.seed, k) & mask; ; h = (h + 1) & mask {
		j := s.slots[h] - 1
		if j < 0 {
			return -1
		}
		if bytes.Equal(s.key(j), k) {
			s.cursor = j + 1
			return j
		}
	}
}

// dropUnseen deletes from dst the snapshot entries a pass did not see in
// src.
func (s *Snapshot) dropUnseen(dst *ebpf.Map, conv Convert, seen []bool) (int, error) {
	n := 0
	for i := int32(0); int(i) < s.Len(); i++ {
		if seen[i] {
			continue
		}
		k, _, err := convert(conv, s.key(i), s.val(i))
		if err != nil {
			return n, err
		}
		if err := dst.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return n, fmt.Errorf("delete: %w", err)
		}
		n++
	}
	return n, nil
}

func convert(conv Convert, k, v []byte) ([]byte, []byte, error) {
	if conv == nil {
		return k, v, nil
	}
	ck, cv, err := conv(bytes.Clone(k), bytes.Clone(v))
	if err != nil {
		return nil, nil, fmt.Errorf("convert entry %x: %w", k, err)
	}
	return ck, cv, nil
}

// readAll reads every entry of m with batch lookups and hands each batch's
// keys and values (flat, n entries) to fn; the buffers are reused.
func readAll(m *ebpf.Map, fn func(keys, vals []byte, n int) error) error {
	keyRows, keys := byteRows(int(m.KeySize()), copyBatch)
	valRows, vals := byteRows(int(m.ValueSize()), copyBatch)
	var cursor ebpf.MapBatchCursor
	for {
		n, err := m.BatchLookup(&cursor, keyRows, valRows, nil)
		if n > 0 {
			if ferr := fn(keys, vals, n); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("batch lookup: %w", err)
		}
	}
}

// readAhead is readAll with the next batch read by another goroutine
// while fn handles this one.
func readAhead(m *ebpf.Map, fn func(keys, vals []byte, n int) error) error {
	type batch struct {
		keyRows, valRows any
		keys, vals       []byte
		n                int
	}
	full := make(chan batch, 2)
	free := make(chan batch, 3)
	for i := 0; i < 3; i++ {
		var b batch
		b.keyRows, b.keys = byteRows(int(m.KeySize()), copyBatch)
		b.valRows, b.vals = byteRows(int(m.ValueSize()), copyBatch)
		free <- b
	}
	stop := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(full)
		var cursor ebpf.MapBatchCursor
		for {
			var b batch
			select {
			case b = <-free:
			case <-stop:
				errc <- nil
				return
			}
			n, err := m.BatchLookup(&cursor, b.keyRows, b.valRows, nil)
			b.n = n
			if n > 0 {
				full <- b
			}
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				errc <- nil
				return
			}
			if err != nil {
				errc <- fmt.Errorf("batch lookup: %w", err)
				return
			}
		}
	}()
	var ferr error
	for b := range full {
		if ferr == nil {
			ferr = fn(b.keys, b.vals, b.n)
			if ferr != nil {
				close(stop)
			}
		}
		free <- b
	}
	if err := <-errc; err != nil {
		return err
	}
	return ferr
}

// writer batches updates of one map.
type writer struct {
	m          *ebpf.Map
	conv       Convert
	ks, vs     int
	keyRows    any
	valRows    any
	keys, vals []byte
	n, written int
}

func newWriter(m *ebpf.Map, conv Convert) *writer {
	w := &writer{m: m, conv: conv, ks: int(m.KeySize()), vs: int(m.ValueSize())}
	w.keyRows, w.keys = byteRows(w.ks, copyBatch)
	w.valRows, w.vals = byteRows(w.vs, copyBatch)
	return w
}

func (w *writer) put(k, v []byte) error {
	k, v, err := convert(w.conv, k, v)
	if err != nil {
		return err
	}
	if len(k) != w.ks || len(v) != w.vs {
		return fmt.Errorf("converted entry has %d/%d key/value bytes, map wants %d/%d", len(k), len(v), w.ks, w.vs)
	}
	copy(w.keys[w.n*w.ks:], k)
	copy(w.vals[w.n*w.vs:], v)
	w.n++
	if w.n == copyBatch {
		return w.flush()
	}
	return nil
}

func (w *writer) flush() error {
	if w.n == 0 {
		return nil
	}
	kr := reflect.ValueOf(w.keyRows).Slice(0, w.n).Interface()
	vr := reflect.ValueOf(w.valRows).Slice(0, w.n).Interface()
	n, err := w.m.BatchUpdate(kr, vr, nil)
	w.written += n
	if err != nil {
		return fmt.Errorf("batch update of %d entries: %w", w.n, err)
	}
	w.n = 0
	return nil
}

// NewSnapshot is an empty snapshot of m's layout: a Merge with it visits
// every entry of m as new since the last pass (base nil). A supervisor that
// finishes a resize a dead one left after its switch uses it, the dead
// process's snapshot being gone.
func NewSnapshot(m *ebpf.Map) *Snapshot {
	return &Snapshot{ks: int(m.KeySize()), vs: int(m.ValueSize()), seed: maphash.MakeSeed()}
}
