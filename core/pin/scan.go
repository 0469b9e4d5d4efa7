package pin

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/cilium/ebpf"
)

// BatchSize is the number of entries fetched per BPF_MAP_LOOKUP_BATCH call.
const BatchSize = 4096

// Scan visits every entry of a hash map with batch lookups (several times
// faster than the per-key iterator on these machines). fn sees copies;
// returning false stops. K and V are the map's key and value types.
func Scan[K, V any](m *ebpf.Map, fn func(k *K, v *V) bool) error {
	keys := make([]K, BatchSize)
	vals := make([]V, BatchSize)
	var cursor ebpf.MapBatchCursor
	for {
		n, err := m.BatchLookup(&cursor, keys, vals, nil)
		for i := 0; i < n; i++ {
			if !fn(&keys[i], &vals[i]) {
				return nil
			}
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("batch lookup: %w", err)
		}
	}
}

// DeleteAll deletes every entry of a hash map and returns how many it
// deleted. Entries the datapath adds meanwhile may stay.
func DeleteAll[K, V any](m *ebpf.Map) (int, error) {
	var keys []K
	if err := Scan(m, func(k *K, _ *V) bool {
		keys = append(keys, *k)
		return true
	}); err != nil {
		return 0, err
	}
	n := 0
	for i := range keys {
		if err := m.Delete(&keys[i]); err == nil {
			n++
		}
	}
	return n, nil
}

// Count counts a hash map's entries with batch lookups, or key by key where
// the map type has no batch operations. The kernel keeps no count a
// program can read, so counting means reading the map.
func Count(m *ebpf.Map) (int, error) {
	keys := byteRows(int(m.KeySize()), BatchSize)
	vals := byteRows(int(m.ValueSize()), BatchSize)
	var cursor ebpf.MapBatchCursor
	total := 0
	for {
		n, err := m.BatchLookup(&cursor, keys, vals, nil)
		total += n
		switch {
		case errors.Is(err, ebpf.ErrKeyNotExist):
			return total, nil
		case errors.Is(err, ebpf.ErrNotSupported) || (err != nil && total == 0):
			return countByKey(m)
		case err != nil:
			return 0, fmt.Errorf("count %s: %w", m, err)
		}
	}
}

// byteRows makes a slice of n byte arrays of the given size, the shape
// BatchLookup wants for keys and values of any size.
func byteRows(size, n int) any {
	return reflect.MakeSlice(reflect.SliceOf(reflect.ArrayOf(size, reflect.TypeFor[byte]())), n, n).Interface()
}

func countByKey(m *ebpf.Map) (int, error) {
	cur, next := make([]byte, m.KeySize()), make([]byte, m.KeySize())
	var key any // nil: start at the first key
	for n := 0; ; n++ {
		if err := m.NextKey(key, next); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				return n, nil
			}
			return n, err
		}
		copy(cur, next)
		key = cur
	}
}
