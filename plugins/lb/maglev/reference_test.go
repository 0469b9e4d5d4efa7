package maglev

import (
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// refBuild is a deliberately naive restatement of the algorithm in the
// package comment: materialised permutations, exact big.Rat times and a
// linear search for the next turn. O(M*N); small sizes only.
func refBuild(bs []Backend, m, seed uint32) []uint32 {
	var act []Backend
	for _, b := range bs {
		if b.Weight > 0 {
			act = append(act, b)
		}
	}
	slices.SortFunc(act, func(a, b Backend) int { return strings.Compare(a.Key, b.Key) })
	n := len(act)
	perm := make([][]uint32, n)
	phase := make([]uint64, n)
	for i, b := range act {
		off := hashKey(b.Key, offsetSeed(seed)) % uint64(m)
		skip := hashKey(b.Key, skipSeed(seed))%uint64(m-1) + 1
		perm[i] = make([]uint32, m)
		for j := range perm[i] {
			perm[i][j] = uint32((off + uint64(j)*skip) % uint64(m))
		}
		phase[i] = hashKey(b.Key, phaseSeed(seed)) >> 32
	}
	table := make([]int, m)
	for j := range table {
		table[j] = -1
	}
	next, turns := make([]int, n), make([]uint64, n)
	filled := 0
	take := func(i int) {
		for {
			s := perm[i][next[i]]
			next[i]++
			if table[s] < 0 {
				table[s] = i
				filled++
				turns[i]++
				return
			}
		}
	}
	for i := 0; i < n && filled < int(m); i++ {
		take(i) // everyone's first turn, at time 0, in Key order
	}
	for filled < int(m) {
		best, bestT := -1, new(big.Rat)
		for i := range act {
			num := new(big.Int).Lsh(new(big.Int).SetUint64(turns[i]+1), 32)
			num.Sub(num, new(big.Int).SetUint64(phase[i]))
			t := new(big.Rat).SetFrac(num, big.NewInt(int64(act[i].Weight)))
			if best < 0 || t.Cmp(bestT) < 0 {
				best, bestT = i, t
			}
		}
		take(best)
	}
	out := make([]uint32, m)
	for j, i := range table {
		out[j] = act[i].ID
	}
	return out
}

// TestMatchesReference checks the cursor/heap implementation against
// refBuild, including extreme weight ratios.
func TestMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		n      int
		m      uint32
		weight func(i int) uint32
	}{
		{1, 251, equalWeights},
		{10, 251, equalWeights},
		{251, 251, equalWeights},
		{3, 1021, func(i int) uint32 { return uint32(i + 1) }},
		{40, 2039, func(int) uint32 { return 1 + r.Uint32N(10) }},
		{100, 1021, func(i int) uint32 { return map[bool]uint32{true: 1000, false: 1}[i == 17] }},
		{30, 4093, func(int) uint32 { return 1 + r.Uint32() }},
		{20, 509, func(i int) uint32 { return map[bool]uint32{true: ^uint32(0), false: 1}[i == 0] }},
		{60, 1021, func(i int) uint32 { return uint32(i % 3) }}, // some excluded
		{50, 2039, func(i int) uint32 { return uint32(1 + i%5) }},
		{200, 4093, func(i int) uint32 { return uint32(1 + i%7*1000) }},
	} {
		bs := mkBackends(tc.n, tc.weight)
		got := mustBuild(t, bs, tc.m, 9)
		if want := refBuild(bs, tc.m, 9); !slices.Equal(got, want) {
			t.Errorf("n=%d m=%d: table differs from the reference", tc.n, tc.m)
		}
	}
}
