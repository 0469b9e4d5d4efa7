package maglev

// cursor is the whole per-backend population state: where the backend's
// probe sequence stands, plus what schedules its turns. No permutation is
// ever stored.
type cursor struct {
	idx    uint32 // index into the caller's backends (Key, ID)
	weight uint32 // > 0
	pos    uint32 // next slot of the probe sequence, < M
	skip   uint32 // probe stride, in [1, M-1]
	phase  uint32 // u*2^32, see the package comment
}

// empty marks an unclaimed slot while dst holds cursor indices; it can
// never be an index because len(cursors) <= M <= max(Primes).
const empty = ^uint32(0)

// populate fills all of dst with indices into st (sorted by Key), taking
// turns as described in the package comment.
func populate(dst []uint32, st []cursor) {
	for j := range dst {
		dst[j] = empty
	}
	left := len(dst)
	// Turn 1 of every backend is at time 0, in Key order.
	for i := range st {
		claim(dst, &st[i], uint32(i))
		if left--; left == 0 {
			return
		}
	}
	s := newSchedule(st)
	if len(s.classes) == 1 {
		// Equal weights: a fixed cycle, no due times to compare.
		for {
			for _, i := range s.order {
				claim(dst, &st[i], i)
				if left--; left == 0 {
					return
				}
			}
		}
	}
	for ; left > 0; left-- {
		i := s.next()
		claim(dst, &st[i], i)
	}
}

// claim gives cursor c (index i) the next still-empty slot of its probe
// sequence. A probe sequence visits every slot because M is prime, and
// dst has an empty slot whenever claim is called, so this terminates.
func claim(dst []uint32, c *cursor, i uint32) {
	m := uint32(len(dst))
	p := c.pos
	for dst[p] != empty {
		p = wrapAdd(p, c.skip, m)
	}
	dst[p] = i
	c.pos = wrapAdd(p, c.skip, m)
}

// wrapAdd returns (p + skip) mod m for p, skip < m <= 2^17. It is
// branch-free on purpose: whether a step wraps is a coin flip (skip is
// random), so a branch would be mispredicted on about half of all probes.
func wrapAdd(p, skip, m uint32) uint32 {
	// r is negative as an int32 exactly when no wrap is due, and its
	// sign bit then selects adding m back.
	r := p + skip - m
	return r + m&uint32(int32(r)>>31)
}
