package leastconn

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/pin"
)

// Active counts, per backend id, the live CT_SERVICE entries of the CT maps
// under l that are not closing: one per connection a client opened to a
// service, whatever algorithm chose its backend.
func Active(l pin.Layout) (map[uint32]uint64, error) {
	maps, err := ctmap.Open(l)
	if err != nil {
		return nil, err
	}
	defer pin.CloseAll(maps)
	now := ctmap.Now()
	out := map[uint32]uint64{}
	for _, name := range ctmap.Maps {
		err := ctmap.Scan(maps[name], func(k *abi.CTTuple, v *abi.CTEntry) bool {
			if k.Flags&abi.TupleService != 0 && v.Lifetime > now &&
				v.Flags&(abi.CTRxClosing|abi.CTTxClosing) == 0 && v.BackendId != 0 {
				out[v.BackendId]++
			}
			return true
		})
		if err != nil {
			return nil, fmt.Errorf("count %s: %w", name, err)
		}
	}
	return out, nil
}

// Refresh rewrites the count map from the CT maps: every backend in
// lb4_backends gets its count of active connections (0 when none), and the
// entries of backends that are gone are deleted. It returns the counts.
// The datapath's bumps since the last refresh are replaced by the truth.
func Refresh(l pin.Layout, counts *ebpf.Map) (map[uint32]uint64, error) {
	active, err := Active(l)
	if err != nil {
		return nil, err
	}
	backends, err := ebpf.LoadPinnedMap(l.Map(abi.AbiMapLb4Backends), nil)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", abi.AbiMapLb4Backends, err)
	}
	defer backends.Close()
	live := map[uint32]bool{}
	var id uint32
	var be abi.LB4Backend
	it := backends.Iterate()
	for it.Next(&id, &be) {
		live[id] = true
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list backends: %w", err)
	}
	out := make(map[uint32]uint64, len(live))
	for id := range live {
		out[id] = active[id]
		if err := counts.Put(id, active[id]); err != nil {
			return nil, fmt.Errorf("write count of backend %d: %w", id, err)
		}
	}
	var stale []uint32
	var n uint64
	it = counts.Iterate()
	for it.Next(&id, &n) {
		if !live[id] {
			stale = append(stale, id)
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list counts: %w", err)
	}
	for _, id := range stale {
		if err := counts.Delete(id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil, fmt.Errorf("delete count of backend %d: %w", id, err)
		}
	}
	return out, nil
}
