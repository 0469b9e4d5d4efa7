package lb

import (
	"errors"
	"slices"
	"testing"
)

// graceCounter counts grace periods instead of waiting for one.
type graceCounter int

func (g *graceCounter) wait() error { *g++; return nil }

func TestSpaceStartsDirtyAndReusesOnlyAfterGrace(t *testing.T) {
	var g graceCounter
	sp, err := newSpace(100, []extent{{10, 5}, {40, 20}}, g.wait)
	if err != nil {
		t.Fatal(err)
	}
	if sp.free() != 99-25 || len(sp.clean) != 0 {
		t.Fatalf("free %d, clean %v; want 74 free, all dirty", sp.free(), sp.clean)
	}
	// The first allocation waits once: another instance may just have
	// freed what looks free. Best fit: the 1..9 hole is the smallest that
	// holds 9.
	if b, err := sp.alloc(9); err != nil || b != 1 || g != 1 {
		t.Fatalf("alloc 9 at %d (%v) after %d grace periods, want the hole at 1 after one", b, err, g)
	}
	a, err := sp.alloc(5)
	if err != nil || a < 15 || (a < 60 && a+5 > 40) {
		t.Fatalf("alloc 5 at %d (%v) overlaps a used table", a, err)
	}
	// A released region is not handed out again before a grace period.
	sp.release(40, 20)
	c, err := sp.alloc(20)
	if err != nil || g != 1 || (c < 60 && c+20 > 40) {
		t.Fatalf("alloc 20 at %d (%v, %d grace periods): reused the region just released", c, err, g)
	}
	// unalloc (never published) is clean at once.
	sp.unalloc(c, 20)
	if d, err := sp.alloc(20); err != nil || d != c || g != 1 {
		t.Fatalf("alloc after unalloc: %d (%v), want %d without waiting", d, err, c)
	}
}

func TestSpaceFullIsAnErrorAndChangesNothing(t *testing.T) {
	var g graceCounter
	sp, err := newSpace(33, nil, g.wait)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := sp.alloc(16)
	b, _ := sp.alloc(16)
	if a == b || sp.free() != 0 {
		t.Fatalf("two tables at %d and %d, %d free", a, b, sp.free())
	}
	clean, dirty := slices.Clone(sp.clean), slices.Clone(sp.dirty)
	if _, err := sp.alloc(1); !errors.Is(err, ErrTablesFull) {
		t.Fatalf("alloc in a full space: %v", err)
	}
	if !slices.Equal(clean, sp.clean) || !slices.Equal(dirty, sp.dirty) {
		t.Fatal("a refused alloc changed the free lists")
	}
	// Freed but fragmented: 16 free in two runs of 8 do not hold 16.
	sp.release(a, 8)
	sp.release(b+8, 8)
	if _, err := sp.alloc(16); !errors.Is(err, ErrTablesFull) {
		t.Fatalf("alloc 16 over two runs of 8: %v", err)
	}
	n := g
	if c, err := sp.alloc(8); err != nil || g != n+1 {
		t.Fatalf("alloc 8 from released chunks: %d (%v), %d grace periods", c, err, g-n)
	}
}

func TestSpaceCoalesces(t *testing.T) {
	var g graceCounter
	sp, _ := newSpace(1+48, []extent{{1, 16}, {17, 16}, {33, 16}}, g.wait)
	sp.release(1, 16)
	sp.release(33, 16)
	sp.release(17, 16)
	if !slices.Equal(sp.dirty, []extent{{1, 48}}) {
		t.Fatalf("dirty %v, want one run of 48", sp.dirty)
	}
	if a, err := sp.alloc(48); err != nil || a != 1 {
		t.Fatalf("alloc 48: %d, %v", a, err)
	}
}

func TestSpaceRefusesOverlappingTables(t *testing.T) {
	var g graceCounter
	for _, used := range [][]extent{{{1, 10}, {5, 10}}, {{0, 1}}, {{90, 20}}} {
		if _, err := newSpace(100, used, g.wait); err == nil {
			t.Errorf("tables %v accepted", used)
		}
	}
}

func TestChunksFor(t *testing.T) {
	for m, want := range map[uint32]uint32{251: 16, 16381: 1024, 131071: 8192, 16: 1, 17: 2} {
		if got := chunksFor(m); got != want {
			t.Errorf("chunksFor(%d) = %d, want %d", m, got, want)
		}
	}
}
