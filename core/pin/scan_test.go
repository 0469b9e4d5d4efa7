package pin

import (
	"testing"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/lab"
)

func filled(t *testing.T, typ ebpf.MapType, n int) *ebpf.Map {
	t.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: typ, KeySize: 4, ValueSize: 8, MaxEntries: uint32(4 * n)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	for i := 0; i < n; i++ {
		if err := m.Put(uint32(i), uint64(i)*3); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// The batch count, the key-by-key walk and a scan agree on hash maps larger
// than one batch; DeleteAll empties them.
func TestPrivilegedScanCountDeleteAll(t *testing.T) {
	lab.Privileged(t)
	const n = 2*BatchSize + 123
	for _, typ := range []ebpf.MapType{ebpf.Hash, ebpf.LRUHash} {
		m := filled(t, typ, n)
		// An LRU map may evict before it is full (its free lists are per
		// CPU): the key walk says what is there, and every count agrees.
		want, err := countByKey(m)
		if err != nil || want > n || (typ == ebpf.Hash && want != n) || want < n*9/10 {
			t.Fatalf("%s: key count %d, %v; filled %d", typ, want, err, n)
		}
		if c, err := Count(m); err != nil || c != want {
			t.Fatalf("%s: batch count %d, %v; want %d", typ, c, err, want)
		}
		seen := map[uint32]bool{}
		err = Scan(m, func(k *uint32, v *uint64) bool {
			if *v != uint64(*k)*3 {
				t.Errorf("%s: entry %d has %d", typ, *k, *v)
			}
			seen[*k] = true
			return true
		})
		if err != nil || len(seen) != want {
			t.Fatalf("%s: scan saw %d distinct keys, %v; want %d", typ, len(seen), err, want)
		}
		stopped := 0
		if err := Scan(m, func(*uint32, *uint64) bool { stopped++; return stopped < 5 }); err != nil || stopped != 5 {
			t.Fatalf("%s: scan did not stop when told: %d visits, %v", typ, stopped, err)
		}
		if d, err := DeleteAll[uint32](m); err != nil || d != want {
			t.Fatalf("%s: deleted %d, %v; want %d", typ, d, err, want)
		}
		if c, err := Count(m); err != nil || c != 0 {
			t.Fatalf("%s: %d left after DeleteAll, %v", typ, c, err)
		}
	}
}
