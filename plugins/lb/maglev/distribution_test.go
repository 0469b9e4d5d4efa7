package maglev

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestDistributionEqual(t *testing.T) {
	for _, m := range []uint32{16381, 65521, 131071} {
		for _, n := range []int{10, 100, 1000} {
			c := counts(mustBuild(t, mkBackends(n, equalWeights), m, 0))
			if len(c) != n {
				t.Fatalf("M=%d N=%d: %d backends present", m, n, len(c))
			}
			lo, hi := int(m), 0
			for _, v := range c {
				lo, hi = min(lo, v), max(hi, v)
			}
			// Every backend takes one turn per round, so shares are
			// floor(M/N) or ceil(M/N).
			if lo != int(m)/n || hi-lo > 1 {
				t.Errorf("M=%d N=%d: shares in [%d, %d], M/N=%d", m, n, lo, hi, int(m)/n)
			}
		}
	}
}

// checkWeighted asserts every share is close to M*w/sum(w). A backend's
// turn count is T*w_i plus a rounding term e_i in (-1, 1]; the table being
// exactly M long spreads the sum of the e_j (about ±0.4*sqrt(N), thanks to
// the phases) over the backends in proportion to weight, hence the bound.
func checkWeighted(t *testing.T, bs []Backend, m uint32) {
	t.Helper()
	c := counts(mustBuild(t, bs, m, 5))
	var sum float64
	for _, b := range bs {
		sum += float64(b.Weight)
	}
	worst := 0.0
	for _, b := range bs {
		want := float64(m) * float64(b.Weight) / sum
		d := math.Abs(float64(c[b.ID]) - want)
		worst = max(worst, d)
		if tol := 2 + 4*math.Sqrt(float64(len(bs)))*float64(b.Weight)/sum; d > tol {
			t.Errorf("M=%d N=%d: backend %d weight %d owns %d slots, want %.1f±%.1f",
				m, len(bs), b.ID, b.Weight, c[b.ID], want, tol)
		}
	}
	t.Logf("M=%d N=%d: worst |share - M*w/sum(w)| = %.2f slots", m, len(bs), worst)
}

func TestDistributionWeighted(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	bs := mkBackends(3, func(i int) uint32 { return uint32(i + 1) }) // 1:2:3
	checkWeighted(t, bs, 16381)
	c := counts(mustBuild(t, bs, 16381, 5))
	t.Logf("1:2:3 at M=16381: shares %d %d %d (ideal %.1f %.1f %.1f)",
		c[1], c[2], c[3], 16381/6.0, 2*16381/6.0, 3*16381/6.0)
	checkWeighted(t, mkBackends(100, func(int) uint32 { return 1 + r.Uint32N(10) }), 16381)
	checkWeighted(t, mkBackends(1000, func(int) uint32 { return 1 + r.Uint32N(100) }), 131071)
	// 1 vs 1000: heap schedule.
	checkWeighted(t, mkBackends(1000, func(i int) uint32 { return map[bool]uint32{true: 1000, false: 1}[i == 0] }), 65521)
	checkWeighted(t, mkBackends(2, func(i int) uint32 { return uint32(1 + 999*i) }), 16381)
}

// TestLookupSpread runs random 5-tuples through HashTuple and Lookup: the
// flow shares must follow the table shares (HashTuple mod M is uniform).
func TestLookupSpread(t *testing.T) {
	bs := mkBackends(10, func(i int) uint32 { return uint32(1 + i%2) }) // 1:2
	tab := mustBuild(t, bs, DefaultM, 0)
	if got := Lookup(tab, 123456789); got != tab[123456789%DefaultM] {
		t.Fatalf("Lookup = %d, want table[hash %% M] = %d", got, tab[123456789%DefaultM])
	}
	r := rand.New(rand.NewPCG(9, 10))
	const flows = 300000
	hits := make(map[uint32]int)
	for range flows {
		h := HashTuple(r.Uint32(), r.Uint32(), uint16(r.Uint32()), 443, 6, 0x5eed)
		hits[Lookup(tab, h)]++
	}
	for _, b := range bs {
		want := float64(flows) * float64(b.Weight) / 15
		if d := math.Abs(float64(hits[b.ID])-want) / want; d > 0.03 {
			t.Errorf("backend %d (weight %d): %d flows, want %.0f ±3%%", b.ID, b.Weight, hits[b.ID], want)
		}
	}
}
