package supervisor

import (
	"sync"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/pin"
)

// entryCounter keeps the entry counts of the shared hash maps for /metrics.
// The kernel keeps no count a user-space program can read, so counting
// means reading the map; a scrape must not do that every time: walking a
// full 512Ki ct4 key by key costs ~1.5 s of syscalls. A scrape takes the
// cached counts, and refreshes them only when they are older than minAge,
// waiting at most budget for the refresh (the counts of the previous
// refresh are served meanwhile). One refresh runs at a time and reads each
// map in batches of batchSize entries.
type entryCounter struct {
	maps   map[string]*ebpf.Map
	minAge time.Duration
	budget time.Duration

	mu      sync.Mutex
	counts  map[string]int
	at      time.Time     // when counts were taken
	running chan struct{} // closed when the refresh in flight is done; nil: none
	walks   int           // refreshes started, for tests
}

const (
	countMinAge = 5 * time.Second
	countBudget = 200 * time.Millisecond
)

// newEntryCounter counts the hash maps among maps.
func newEntryCounter(maps map[string]*ebpf.Map) *entryCounter {
	c := &entryCounter{maps: map[string]*ebpf.Map{}, minAge: countMinAge, budget: countBudget}
	for name, m := range maps {
		switch m.Type() {
		case ebpf.Hash, ebpf.LRUHash, ebpf.HashOfMaps:
			c.maps[name] = m
		}
	}
	return c
}

// Counts returns the latest counts (nil before the first refresh is done)
// and their age.
func (c *entryCounter) Counts() (map[string]int, time.Duration) {
	c.mu.Lock()
	done := c.running
	if done == nil && time.Since(c.at) >= c.minAge {
		done = make(chan struct{})
		c.running = done
		c.walks++
		go c.refresh(done)
	}
	c.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-time.After(c.budget):
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts, time.Since(c.at)
}

// set replaces the handle of map name (a live resize replaced the map).
func (c *entryCounter) set(name string, m *ebpf.Map) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.maps[name]; ok {
		c.maps[name] = m
	}
}

func (c *entryCounter) refresh(done chan struct{}) {
	c.mu.Lock()
	maps := make(map[string]*ebpf.Map, len(c.maps))
	for name, m := range c.maps {
		maps[name] = m
	}
	c.mu.Unlock()
	counts := make(map[string]int, len(maps))
	for name, m := range maps {
		n, err := pin.Count(m)
		if err != nil {
			continue // not exported rather than wrong
		}
		counts[name] = n
	}
	c.mu.Lock()
	c.counts, c.at, c.running = counts, time.Now(), nil
	c.mu.Unlock()
	close(done)
}
