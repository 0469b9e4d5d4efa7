package maglev

import (
	"math/bits"
	"slices"
)

// schedule yields the turns after the first ones (every backend's turn 1,
// at time 0, which populate takes itself) in order of due time, ties in
// Key order. Turn j+1 of backend i is due at ((j+1)*2^32 - phase_i)/w_i.
//
// Backends of equal weight take turn j+1 inside the same window
// (j/w, (j+1)/w], always in the same order (decreasing phase, then Key),
// so each weight class is a fixed cycle and only the classes need
// ordering: a min-heap over the D distinct weights, O(log D) per turn.
// With equal weights (D = 1) that is plain round robin, which is why the
// common case costs no more than classic Maglev.
type schedule struct {
	order   []uint32    // cursor indices by (weight, phase desc, Key)
	classes []weightCls // one per distinct weight
	heap    []uint32    // indices into classes, min-heap by less
	st      []cursor
}

// weightCls is one weight class: the cycle order[start:end] and where in
// it the next turn is.
type weightCls struct {
	start, end, next uint32 // next indexes order
	w                uint32
	turn             uint64 // j+1: the turn number the cycle is on
	due              uint64 // due time * w of the next turn: turn<<32 - phase
}

func newSchedule(st []cursor) schedule {
	s := schedule{order: make([]uint32, len(st)), st: st}
	for i := range s.order {
		s.order[i] = uint32(i)
	}
	slices.SortFunc(s.order, func(a, b uint32) int {
		ca, cb := &st[a], &st[b]
		switch {
		case ca.weight != cb.weight:
			return cmp3(cb.weight, ca.weight) // heavier first (any fixed order works)
		case ca.phase != cb.phase:
			return cmp3(cb.phase, ca.phase) // larger phase is due earlier
		}
		return cmp3(a, b)
	})
	d := 1
	for j := 1; j < len(s.order); j++ {
		if st[s.order[j]].weight != st[s.order[j-1]].weight {
			d++
		}
	}
	s.classes = make([]weightCls, 0, d)
	for j := 0; j < len(s.order); {
		k := j + 1
		for k < len(s.order) && st[s.order[k]].weight == st[s.order[j]].weight {
			k++
		}
		c := weightCls{start: uint32(j), end: uint32(k), next: uint32(j), w: st[s.order[j]].weight, turn: 2}
		c.due = c.turn<<32 - uint64(st[s.order[j]].phase)
		s.classes = append(s.classes, c)
		j = k
	}
	s.heap = make([]uint32, len(s.classes))
	for i := range s.heap {
		s.heap[i] = uint32(i)
	}
	for j := len(s.heap)/2 - 1; j >= 0; j-- {
		s.down(j)
	}
	return s
}

func cmp3(a, b uint32) int {
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}

// next returns the cursor index of the next turn and advances its class.
func (s *schedule) next() uint32 {
	c := &s.classes[s.heap[0]]
	i := s.order[c.next]
	if c.next++; c.next == c.end {
		c.next = c.start
		c.turn++
	}
	c.due = c.turn<<32 - uint64(s.st[s.order[c.next]].phase)
	s.down(0)
	return i
}

// less orders classes by the due time of their next turn, due/w, compared
// exactly as due_a*w_b < due_b*w_a in 128 bits, then by Key order.
func (s *schedule) less(a, b uint32) bool {
	ca, cb := &s.classes[a], &s.classes[b]
	ha, la := bits.Mul64(ca.due, uint64(cb.w))
	hb, lb := bits.Mul64(cb.due, uint64(ca.w))
	if ha != hb {
		return ha < hb
	}
	if la != lb {
		return la < lb
	}
	return s.order[ca.next] < s.order[cb.next]
}

func (s *schedule) down(j int) {
	h := s.heap
	for {
		l := 2*j + 1
		if l >= len(h) {
			return
		}
		if r := l + 1; r < len(h) && s.less(h[r], h[l]) {
			l = r
		}
		if !s.less(h[l], h[j]) {
			return
		}
		h[j], h[l] = h[l], h[j]
		j = l
	}
}
