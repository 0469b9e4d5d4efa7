package pin

import (
	"errors"
	"fmt"
	"reflect"
	"unsafe"

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

// ScanRaw is Scan for a map whose values have no fixed Go type (a map with
// several layouts): fn sees each key and its value's bytes, valid until fn
// returns. Returning false stops.
func ScanRaw[K any](m *ebpf.Map, fn func(k *K, v []byte) bool) error {
	vs := int(m.ValueSize())
	keys := make([]K, BatchSize)
	rows, flat := byteRows(vs, BatchSize)
	var cursor ebpf.MapBatchCursor
	for {
		n, err := m.BatchLookup(&cursor, keys, rows, nil)
		for i := 0; i < n; i++ {
			if !fn(&keys[i], flat[i*vs:(i+1)*vs]) {
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

// DeleteAll deletes every entry of a hash map with keys of type K, whatever
// its values, and returns how many it deleted. Entries the datapath adds
// meanwhile may stay.
func DeleteAll[K any](m *ebpf.Map) (int, error) {
	var keys []K
	if err := ScanRaw(m, func(k *K, _ []byte) bool {
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
	keys, _ := byteRows(int(m.KeySize()), BatchSize)
	vals, _ := byteRows(int(m.ValueSize()), BatchSize)
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
// BatchLookup wants for keys and values of any size, and returns it with a
// flat view of its memory.
func byteRows(size, n int) (any, []byte) {
	v := reflect.MakeSlice(reflect.SliceOf(reflect.ArrayOf(size, reflect.TypeFor[byte]())), n, n)
	return v.Interface(), unsafe.Slice((*byte)(v.UnsafePointer()), size*n)
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
