package lb

import (
	"errors"
	"fmt"
	"slices"
)

// extent is a run of n lb4_maglev chunks starting at off.
type extent struct{ off, n uint32 }

func (e extent) end() uint32 { return e.off + e.n }

// space hands out regions of lb4_maglev for Maglev tables. The kernel map
// is the record of what is used (every service value names its table's
// offset and M); space only remembers which free chunks are safe to reuse:
//
//   - clean chunks have not been named by any service value for at least
//     one RCU grace period, so no packet can still be reading them;
//   - dirty chunks were freed since the last grace period (a table
//     replaced or dropped): a packet that read the old service value a
//     moment ago may still read them.
//
// A new table is written only to clean chunks; when none fit, one grace
// period (graceFn) turns every dirty chunk clean. Chunk 0 is never handed
// out: offset 0 in a service value means "no table".
type space struct {
	size  uint32   // chunks in lb4_maglev
	clean []extent // sorted, disjoint, never adjacent
	dirty []extent // the same
	grace func() error
}

// newSpace returns the space of a map of size chunks of which used are
// taken. Everything else starts dirty: it may have been freed a moment ago
// by another instance of the plugin (an upgrade, a restart), so the first
// allocation waits for one grace period.
func newSpace(size uint32, used []extent, grace func() error) (*space, error) {
	s := &space{size: size, grace: grace}
	used = slices.Clone(used)
	slices.SortFunc(used, func(a, b extent) int { return int(a.off) - int(b.off) })
	next := uint32(1)
	for _, u := range used {
		if u.off < next || u.end() > size {
			return nil, fmt.Errorf("maglev tables overlap or overrun %d chunks at chunk %d (+%d)", size, u.off, u.n)
		}
		if u.off > next {
			s.dirty = append(s.dirty, extent{next, u.off - next})
		}
		next = u.end()
	}
	if next < size {
		s.dirty = append(s.dirty, extent{next, size - next})
	}
	return s, nil
}

// ErrTablesFull is returned when lb4_maglev has no room for a table.
var ErrTablesFull = errors.New("lb4_maglev is full")

// alloc returns the offset of n clean chunks: the smallest free extent
// that fits (best fit keeps the big holes for big tables).
func (s *space) alloc(n uint32) (uint32, error) {
	if off, ok := take(&s.clean, n); ok {
		return off, nil
	}
	if len(s.dirty) > 0 && largest(merge(s.clean, s.dirty)) >= n {
		if err := s.grace(); err != nil {
			return 0, fmt.Errorf("wait for readers of freed maglev tables: %w", err)
		}
		for _, e := range s.dirty {
			s.clean = insert(s.clean, e)
		}
		s.dirty = nil
		if off, ok := take(&s.clean, n); ok {
			return off, nil
		}
	}
	return 0, fmt.Errorf("%w: need %d chunks (%d ids); %d free of %d, largest free run %d",
		ErrTablesFull, n, n*chunkIDs, s.free(), s.size-1, largest(merge(s.clean, s.dirty)))
}

// unalloc gives back a region that no service value ever named (a commit
// that failed before publishing it): it is still clean.
func (s *space) unalloc(off, n uint32) { s.clean = insert(s.clean, extent{off, n}) }

// release frees a region that a service value named until just now.
func (s *space) release(off, n uint32) {
	if off != 0 && n != 0 {
		s.dirty = insert(s.dirty, extent{off, n})
	}
}

// free is the number of free chunks, clean or dirty.
func (s *space) free() uint32 {
	var t uint32
	for _, e := range s.clean {
		t += e.n
	}
	for _, e := range s.dirty {
		t += e.n
	}
	return t
}

// take removes n chunks from the best-fitting extent of *l.
func take(l *[]extent, n uint32) (uint32, bool) {
	best := -1
	for i, e := range *l {
		if e.n >= n && (best < 0 || e.n < (*l)[best].n) {
			best = i
			if e.n == n {
				break
			}
		}
	}
	if best < 0 {
		return 0, false
	}
	e := &(*l)[best]
	off := e.off
	e.off, e.n = e.off+n, e.n-n
	if e.n == 0 {
		*l = slices.Delete(*l, best, best+1)
	}
	return off, true
}

func largest(l []extent) uint32 {
	var m uint32
	for _, e := range l {
		m = max(m, e.n)
	}
	return m
}

// merge is the union of two extent lists, as one list.
func merge(a, b []extent) []extent {
	out := slices.Clone(a)
	for _, e := range b {
		out = insert(out, e)
	}
	return out
}

// insert adds e to the sorted list l, joining it with adjacent extents.
func insert(l []extent, e extent) []extent {
	i, _ := slices.BinarySearchFunc(l, e.off, func(x extent, off uint32) int { return int(x.off) - int(off) })
	l = slices.Insert(l, i, e)
	if i+1 < len(l) && l[i].end() == l[i+1].off {
		l[i].n += l[i+1].n
		l = slices.Delete(l, i+1, i+2)
	}
	if i > 0 && l[i-1].end() == l[i].off {
		l[i-1].n += l[i].n
		l = slices.Delete(l, i, i+1)
	}
	return l
}
