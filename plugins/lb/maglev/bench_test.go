package maglev

import (
	"fmt"
	"testing"
)

var benchSizes = []uint32{16381, 65521, 131071}
var benchBackends = []int{10, 100, 1000}

// BenchmarkBuild allocates a fresh table per build, like a first build.
func BenchmarkBuild(b *testing.B) {
	for _, m := range benchSizes {
		for _, n := range benchBackends {
			bs := mkBackends(n, equalWeights)
			b.Run(fmt.Sprintf("M=%d/N=%d", m, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := Build(bs, m, 0); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkBuildInto reuses the table, like a rebuild on a backend change:
// its B/op is the whole scratch memory of a build.
func BenchmarkBuildInto(b *testing.B) {
	for _, m := range benchSizes {
		for _, n := range benchBackends {
			bs := mkBackends(n, equalWeights)
			dst := make([]uint32, m)
			b.Run(fmt.Sprintf("M=%d/N=%d", m, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := BuildInto(dst, bs, m, 0); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkBuildWeighted uses skewed weights (one backend at 1000, the rest
// at 1) and 1000 distinct weights (the worst case for the scheduler) to
// show that weights cost little over equal weights.
func BenchmarkBuildWeighted(b *testing.B) {
	const n = 1000
	for _, w := range []struct {
		name   string
		weight func(i int) uint32
	}{
		{"skewed", func(i int) uint32 { return map[bool]uint32{true: 1000, false: 1}[i == 0] }},
		{"distinct", func(i int) uint32 { return uint32(1 + i) }},
	} {
		bs := mkBackends(n, w.weight)
		for _, m := range benchSizes {
			dst := make([]uint32, m)
			b.Run(fmt.Sprintf("%s/M=%d/N=%d", w.name, m, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := BuildInto(dst, bs, m, 0); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

var sink uint32

// BenchmarkHashTuple measures throughput (independent hashes), as in the
// datapath where packets do not depend on each other.
func BenchmarkHashTuple(b *testing.B) {
	var h uint32
	for i := uint32(0); b.Loop(); i++ {
		h ^= HashTuple(0x0a000001+i, 0x0a000002, uint16(i), 80, 6, 0)
	}
	sink = h
}

func BenchmarkLookup(b *testing.B) {
	tab, err := Build(mkBackends(100, equalWeights), DefaultM, 0)
	if err != nil {
		b.Fatal(err)
	}
	var h uint32
	for i := uint32(0); b.Loop(); i++ {
		h ^= Lookup(tab, HashTuple(0x0a000001+i, 0x0a000002, uint16(i), 80, 6, 0))
	}
	sink = h
}
