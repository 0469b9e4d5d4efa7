package supervisor

import (
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/lab"
)

// fullMap is a hash map of ct4's shape and size, filled.
func fullMap(t *testing.T, entries int) *ebpf.Map {
	t.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 16, ValueSize: 64, MaxEntries: uint32(entries)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	for base := 0; base < entries; base += 1 << 14 {
		chunk := min(1<<14, entries-base)
		keys, vals := make([][16]byte, chunk), make([][64]byte, chunk)
		for i := range keys {
			n := uint32(base + i)
			keys[i] = [16]byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)}
		}
		if n, err := m.BatchUpdate(keys, vals, nil); err != nil {
			t.Fatalf("fill from %d: %d updated: %v", base, n, err)
		}
	}
	return m
}

// TestPrivilegedMapCountBounded: scrapes against a full 512Ki map cost no
// walk each: at most one refresh per minAge, served from the cache, and a
// scrape never waits longer than the budget for it.
func TestPrivilegedMapCountBounded(t *testing.T) {
	lab.Privileged(t)
	const entries = 512 << 10
	full := fullMap(t, entries)
	small := fullMap(t, 1<<10)
	arr, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer arr.Close()
	c := newEntryCounter(map[string]*ebpf.Map{"ct4": full, "small": small, "config": arr})
	c.minAge = time.Hour // only the first scrape may refresh

	start := time.Now()
	c.Counts()
	if took := time.Since(start); took > c.budget+time.Second {
		t.Fatalf("first scrape took %v, budget %v", took, c.budget)
	}
	var counts map[string]int
	deadline := time.Now().Add(30 * time.Second)
	for counts["ct4"] == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		counts, _ = c.Counts()
	}
	if counts["ct4"] != entries || counts["small"] != 1<<10 {
		t.Fatalf("counts %v, want ct4 %d, small %d", counts, entries, 1<<10)
	}
	if _, ok := counts["config"]; ok {
		t.Fatal("an array map was counted")
	}

	// Twenty more scrapes: no walk. Walking the full map key by key, as
	// every scrape did before, takes ~1.5 s each.
	start = time.Now()
	for range 20 {
		c.Counts()
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("20 scrapes took %v", took)
	}
	c.mu.Lock()
	walks := c.walks
	c.mu.Unlock()
	if walks != 1 {
		t.Fatalf("%d refreshes for 21 scrapes within minAge, want 1", walks)
	}

	// Once the counts are old, a scrape refreshes them.
	if err := small.Delete([16]byte{}); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.minAge = 0
	c.mu.Unlock()
	deadline = time.Now().Add(30 * time.Second)
	for counts["small"] != 1<<10-1 && time.Now().Before(deadline) {
		counts, _ = c.Counts()
	}
	if counts["small"] != 1<<10-1 {
		t.Fatalf("small counted %d after a delete, want %d", counts["small"], 1<<10-1)
	}
}
