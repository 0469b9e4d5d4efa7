package policy

import (
	"math/rand/v2"
	"testing"
)

// TestRangePrefixesCoverExactly: every port of [lo, hi] is covered by exactly
// one block and no port outside is, for edges and random ranges.
func TestRangePrefixesCoverExactly(t *testing.T) {
	cases := [][2]uint16{{1, 65535}, {0, 65535}, {80, 80}, {80, 81}, {32000, 32768}, {1, 1}, {65535, 65535}, {1024, 2047}}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		a, b := uint16(r.IntN(65536)), uint16(r.IntN(65536))
		if a > b {
			a, b = b, a
		}
		cases = append(cases, [2]uint16{a, b})
	}
	for _, c := range cases {
		ps := rangePrefixes(c[0], c[1])
		if len(ps) > 30 {
			t.Errorf("%v: %d blocks, want <= 30", c, len(ps))
		}
		covered := make([]int, 65536)
		for _, p := range ps {
			span := uint32(1) << (16 - p.bits)
			if uint32(p.port)%span != 0 {
				t.Fatalf("%v: block %+v not aligned", c, p)
			}
			for q := uint32(p.port); q < uint32(p.port)+span; q++ {
				covered[q]++
			}
		}
		for q := 0; q < 65536; q++ {
			want := 0
			if q >= int(c[0]) && q <= int(c[1]) {
				want = 1
			}
			if covered[q] != want {
				t.Fatalf("%v: port %d covered %d times, want %d", c, q, covered[q], want)
			}
		}
	}
}
