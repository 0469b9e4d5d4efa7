package bench

import (
	"fmt"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/plugins/ct"
)

const (
	// gcEntries fill a private map of gcMapSize: the shared ct4 holds only
	// 512Ki, and the target is a GC pass over a million entries.
	gcEntries = 1_000_000
	gcMapSize = 1 << 20
	// Every gcExpiredEvery-th entry is expired in the "10% expired" pass.
	gcExpiredEvery = 10
	// gcChunk entries per BatchUpdate call.
	gcChunk = 1 << 16
)

// gcMap is a 1Mi-entry LRU_HASH shaped like ct4 (same key, value and flags
// from the same spec), with its content kept in memory to rewrite it.
type gcMap struct {
	m    *ebpf.Map
	keys []abi.CTTuple
	vals []abi.CTEntry
}

func newGCMap() (*gcMap, error) {
	specs, err := pin.SharedSpecs()
	if err != nil {
		return nil, err
	}
	spec := specs[abi.MapCT4].Copy()
	spec.MaxEntries = gcMapSize
	spec.Pinning = ebpf.PinNone
	m, err := ebpf.NewMap(spec)
	if err != nil {
		return nil, fmt.Errorf("create %d-entry ct map: %w", gcMapSize, err)
	}
	g := &gcMap{m: m, keys: make([]abi.CTTuple, gcEntries), vals: make([]abi.CTEntry, gcEntries)}
	for i := range g.keys {
		g.keys[i] = abi.CTTuple{Saddr: uint32(i) + 1, Daddr: 0x0202f00a, Sport: uint16(i), Dport: 0x5000,
			Nexthdr: 6, Flags: abi.TupleOut}
		g.vals[i] = abi.CTEntry{Packets: 3, Bytes: 180, Flags: abi.CTSeenNonSyn}
	}
	return g, nil
}

// put writes entries idx (all when idx is nil) with lifetime life.
func (g *gcMap) put(idx []int, life uint32) error {
	keys, vals := g.keys, g.vals
	if idx != nil {
		keys, vals = make([]abi.CTTuple, len(idx)), make([]abi.CTEntry, len(idx))
		for j, i := range idx {
			keys[j], vals[j] = g.keys[i], g.vals[i]
		}
	}
	for i := range vals {
		vals[i].Lifetime = life
	}
	for lo := 0; lo < len(keys); lo += gcChunk {
		hi := min(lo+gcChunk, len(keys))
		if _, err := g.m.BatchUpdate(keys[lo:hi], vals[lo:hi], nil); err != nil {
			return fmt.Errorf("batch update: %w", err)
		}
	}
	return nil
}

// count scans with ctmap.Scan and returns the entries seen and the time.
func (g *gcMap) count() (int, time.Duration, error) {
	n := 0
	start := time.Now()
	err := ctmap.Scan(g.m, func(*abi.CTTuple, *abi.CTEntry) bool { n++; return true })
	return n, time.Since(start), err
}

// iterate is the per-entry baseline: one BPF_MAP_GET_NEXT_KEY plus one
// lookup per entry (what Map.Iterate does).
func (g *gcMap) iterate() (int, time.Duration, error) {
	var k abi.CTTuple
	var v abi.CTEntry
	n := 0
	start := time.Now()
	it := g.m.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	return n, time.Since(start), it.Err()
}

func ctgcSuite(c *Context) ([]Row, error) {
	g, err := newGCMap()
	if err != nil {
		return nil, err
	}
	defer g.m.Close()
	live := func() uint32 { return ctmap.Now() + 3600 }
	if err := g.put(nil, live()); err != nil {
		return nil, err
	}
	held, _, err := g.count()
	if err != nil {
		return nil, err
	}
	var note string
	if held != gcEntries {
		note = fmt.Sprintf("the LRU map held %d of %d entries after the fill", held, gcEntries)
	}
	var expired []int
	for i := 0; i < gcEntries; i += gcExpiredEvery {
		expired = append(expired, i)
	}
	sw, swErr := newSweeper(g.m)
	if swErr == nil {
		defer sw.close()
	}

	var scan, iter, passNone, pass10, insert, sweepNone, sweep10 []float64
	for run := range c.Runs {
		c.Logf("ctgc run %d/%d", run+1, c.Runs)
		n, d, err := g.count()
		if err != nil {
			return nil, err
		}
		scan = append(scan, float64(n)/d.Seconds())
		if n, d, err = g.iterate(); err != nil {
			return nil, err
		}
		iter = append(iter, float64(n)/d.Seconds())

		res, d, err := timedPass(g.m)
		if err != nil {
			return nil, err
		}
		if res.Deleted != 0 {
			return nil, fmt.Errorf("pass over live entries deleted %d", res.Deleted)
		}
		passNone = append(passNone, d.Seconds())
		if sw != nil {
			d, _, err := sw.sweep()
			if err != nil {
				return nil, err
			}
			sweepNone = append(sweepNone, d.Seconds())
		}

		if err := g.put(expired, ctmap.Now()-10); err != nil {
			return nil, err
		}
		if res, d, err = timedPass(g.m); err != nil {
			return nil, err
		}
		if res.Deleted != len(expired) {
			return nil, fmt.Errorf("10%% expired pass deleted %d, want %d", res.Deleted, len(expired))
		}
		pass10 = append(pass10, d.Seconds())

		start := time.Now()
		if err := g.put(expired, live()); err != nil {
			return nil, err
		}
		insert = append(insert, float64(len(expired))/time.Since(start).Seconds())

		if sw != nil {
			// The in-kernel sweep deletes too, so it gets its own expired set.
			if err := g.put(expired, ctmap.Now()-10); err != nil {
				return nil, err
			}
			d, deleted, err := sw.sweep()
			if err != nil {
				return nil, err
			}
			if deleted != len(expired) {
				return nil, fmt.Errorf("in-kernel sweep deleted %d, want %d", deleted, len(expired))
			}
			sweep10 = append(sweep10, d.Seconds())
			if err := g.put(expired, live()); err != nil {
				return nil, err
			}
		}
	}
	m := "1M entries in an LRU_HASH of max_entries 1<<20 (ct4 key/value)"
	rows := []Row{
		{Name: "scan rate, batch lookup (ctmap.Scan, 4096 per call), " + m, Unit: UnitEntries, Samples: scan,
			BaseName: "per-entry iterator (Map.Iterate)", Base: iter, Note: note},
		{Name: "full GC pass (ct.Pass), none expired, " + m, Unit: UnitSeconds, Samples: passNone, Target: Below(0.5)},
		{Name: "full GC pass (ct.Pass), 10% expired (100k deleted, each re-checked before delete), " + m, Unit: UnitSeconds, Samples: pass10, Target: Below(0.5)},
		{Name: "BatchUpdate insert rate, 100k new entries into a 900k-entry map (64Ki per call)", Unit: UnitEntries, Samples: insert},
	}
	if sw == nil {
		rows = append(rows, Row{Name: "in-kernel sweep (bpf_for_each_map_elem, test-run)", Pending: "not run: " + swErr.Error()})
		return rows, nil
	}
	return append(rows,
		Row{Name: "in-kernel sweep (bpf_for_each_map_elem from a test-run program), none expired, " + m, Unit: UnitSeconds, Samples: sweepNone,
			BaseName: "ct.Pass, none expired", Base: passNone, Target: Below(0.5)},
		Row{Name: "in-kernel sweep, 10% expired (check and delete in the callback), " + m, Unit: UnitSeconds, Samples: sweep10,
			BaseName: "ct.Pass, 10% expired", Base: pass10, Target: Below(0.5)},
	), nil
}

func timedPass(m *ebpf.Map) (ct.PassResult, time.Duration, error) {
	start := time.Now()
	res, err := ct.Pass(m, ctmap.Now)
	return res, time.Since(start), err
}
