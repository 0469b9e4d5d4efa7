package maglev

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// mkBackends returns n backends with IDs 1..n, IP:port keys and weight(i).
func mkBackends(n int, weight func(i int) uint32) []Backend {
	bs := make([]Backend, n)
	for i := range bs {
		bs[i] = Backend{
			ID:     uint32(i + 1),
			Key:    fmt.Sprintf("10.%d.%d.%d:80", i>>16&0xff, i>>8&0xff, i&0xff),
			Weight: weight(i),
		}
	}
	return bs
}

func equalWeights(int) uint32 { return 1 }

func mustBuild(t testing.TB, bs []Backend, m, seed uint32) []uint32 {
	t.Helper()
	tab, err := Build(bs, m, seed)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func counts(tab []uint32) map[uint32]int {
	c := make(map[uint32]int)
	for _, id := range tab {
		c[id]++
	}
	return c
}

func TestValidSize(t *testing.T) {
	for _, m := range Primes {
		if err := ValidSize(m); err != nil {
			t.Errorf("ValidSize(%d) = %v", m, err)
		}
	}
	for _, m := range []uint32{0, 1, 2, 100, 16383, 65536, 262139} {
		err := ValidSize(m)
		if !errors.Is(err, ErrInvalidSize) || !strings.Contains(err.Error(), "16381") {
			t.Errorf("ValidSize(%d) = %v, want ErrInvalidSize listing the primes", m, err)
		}
	}
	if !slices.Contains(Primes, DefaultM) {
		t.Errorf("DefaultM %d not in Primes", DefaultM)
	}
}

func TestBuildErrors(t *testing.T) {
	zero := mkBackends(5, func(int) uint32 { return 0 })
	dup := mkBackends(5, equalWeights)
	dup[3].Key = dup[1].Key
	for _, tc := range []struct {
		name string
		bs   []Backend
		m    uint32
		want error
	}{
		{"nil", nil, 251, ErrNoBackends},
		{"all zero weight", zero, 251, ErrNoBackends},
		{"too many", mkBackends(252, equalWeights), 251, ErrTooManyBackends},
		{"duplicate key", dup, 251, ErrDuplicateKey},
		{"bad size", mkBackends(3, equalWeights), 250, ErrInvalidSize},
	} {
		if _, err := Build(tc.bs, tc.m, 0); !errors.Is(err, tc.want) {
			t.Errorf("%s: Build err = %v, want %v", tc.name, err, tc.want)
		}
	}
	dst := make([]uint32, 251)
	if err := BuildInto(dst[:250], mkBackends(3, equalWeights), 251, 0); !errors.Is(err, ErrDstSize) {
		t.Errorf("short dst: err = %v", err)
	}
	// A failed build leaves dst alone.
	for i := range dst {
		dst[i] = 7
	}
	if err := BuildInto(dst, dup, 251, 0); err == nil || slices.ContainsFunc(dst, func(v uint32) bool { return v != 7 }) {
		t.Errorf("failed BuildInto touched dst (err %v)", err)
	}
	// Zero-weight backends count neither towards the limit nor as duplicates.
	bs := mkBackends(300, func(i int) uint32 { return uint32(i % 2) })
	bs[0].Key = bs[1].Key
	if _, err := Build(bs, 251, 0); err != nil {
		t.Errorf("150 active of 300 at M=251: %v", err)
	}
}

func TestDeterministic(t *testing.T) {
	bs := mkBackends(100, func(i int) uint32 { return uint32(1 + i%7) })
	a := mustBuild(t, bs, 16381, 1)
	if b := mustBuild(t, bs, 16381, 1); !slices.Equal(a, b) {
		t.Fatal("identical inputs gave different tables")
	}
	// Input order does not matter.
	r := rand.New(rand.NewPCG(1, 2))
	for range 5 {
		sh := slices.Clone(bs)
		r.Shuffle(len(sh), func(i, j int) { sh[i], sh[j] = sh[j], sh[i] })
		if b := mustBuild(t, sh, 16381, 1); !slices.Equal(a, b) {
			t.Fatal("shuffled input gave a different table")
		}
	}
	// Zero-weight backends are invisible.
	extra := append(slices.Clone(bs), mkBackends(150, func(int) uint32 { return 0 })[100:]...)
	if b := mustBuild(t, extra, 16381, 1); !slices.Equal(a, b) {
		t.Fatal("zero-weight backends changed the table")
	}
	// Scaling all weights by a constant changes nothing: only ratios matter.
	scaled := slices.Clone(bs)
	for i := range scaled {
		scaled[i].Weight *= 1000
	}
	if b := mustBuild(t, scaled, 16381, 1); !slices.Equal(a, b) {
		t.Fatal("scaled weights gave a different table")
	}
	// The seed does matter.
	if b := mustBuild(t, bs, 16381, 2); slices.Equal(a, b) {
		t.Fatal("seed has no effect")
	}
}

// TestGolden pins a small table so that any change to key hashing or
// population (which would reshuffle every node's table) is deliberate.
func TestGolden(t *testing.T) {
	tab := mustBuild(t, mkBackends(3, func(i int) uint32 { return uint32(i + 1) }), 251, 0)
	got := fmt.Sprint(tab[:32])
	const want = "[2 3 2 1 1 2 3 3 3 3 2 2 1 1 1 3 2 3 2 3 2 3 3 2 1 2 3 3 3 2 3 2]"
	if got != want {
		t.Errorf("table prefix = %s\nwant            %s", got, want)
	}
}

func TestEveryActiveBackendOwnsASlot(t *testing.T) {
	// N == M: exactly one slot each.
	c := counts(mustBuild(t, mkBackends(251, equalWeights), 251, 0))
	if len(c) != 251 {
		t.Fatalf("%d of 251 backends present", len(c))
	}
	for id, n := range c {
		if n != 1 {
			t.Fatalf("backend %d owns %d slots, want 1", id, n)
		}
	}
	// Extreme ratios still leave every backend at least one slot.
	bs := mkBackends(10, func(i int) uint32 { return map[bool]uint32{true: ^uint32(0), false: 1}[i == 0] })
	if c := counts(mustBuild(t, bs, 251, 0)); len(c) != 10 || c[1] != 251-9 {
		t.Fatalf("extreme weights: %v", c)
	}
}
