package policy

// portPrefix is an aligned block of ports: the top bits of port, as an LPM
// key covers them.
type portPrefix struct {
	port uint16
	bits uint8 // 0..16 leading bits that must match
}

// rangePrefixes covers [lo, hi] with the fewest aligned blocks (at most 30
// for a 16-bit range), so a NetworkPolicy endPort range costs a handful of
// LPM entries and one lookup, whatever its size.
func rangePrefixes(lo, hi uint16) []portPrefix {
	var out []portPrefix
	for cur := uint32(lo); cur <= uint32(hi); {
		size := uint32(1)
		// Grow the block while it stays aligned at cur and inside the range.
		for size < 1<<16 && cur%(size*2) == 0 && cur+size*2-1 <= uint32(hi) {
			size *= 2
		}
		bits := uint8(16)
		for s := size; s > 1; s >>= 1 {
			bits--
		}
		out = append(out, portPrefix{port: uint16(cur), bits: bits})
		cur += size
	}
	return out
}
