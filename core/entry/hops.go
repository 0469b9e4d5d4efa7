package entry

import (
	"fmt"

	"github.com/hotpath/hotpath/core/ctmap"
)

// routeState is struct fwd_route of bpf/entry.c.
type routeState struct {
	Epoch uint32
	Off   uint32
}

func (e *Programs) route() (routeState, error) {
	var st routeState
	if err := e.Route.Lookup(uint32(0), &st); err != nil {
		return st, fmt.Errorf("read forward route state: %w", err)
	}
	return st, nil
}

// ForgetHops ends every next hop the forward stage remembers: the next
// packet of each flow asks the FIB again. Call it after anything that may
// change where a packet goes (a route, a neighbour, an address, a device).
// Only the supervisor writes the state, from one goroutine at a time.
func (e *Programs) ForgetHops() error {
	st, err := e.route()
	if err != nil {
		return err
	}
	st.Epoch++
	if err := e.Route.Put(uint32(0), st); err != nil {
		return fmt.Errorf("forget next hops: %w", err)
	}
	return nil
}

// SetHopsOff stops (or resumes) remembering next hops: every packet then
// asks the FIB. For a node with routing rules of its own, which may route
// on what a remembered hop's key leaves out (marks, ports, users).
func (e *Programs) SetHopsOff(off bool) error {
	st, err := e.route()
	if err != nil {
		return err
	}
	var want uint32
	if off {
		want = 1
	}
	if st.Off == want {
		return nil
	}
	st.Off = want
	st.Epoch++
	if err := e.Route.Put(uint32(0), st); err != nil {
		return fmt.Errorf("set next hop memory off=%v: %w", off, err)
	}
	return nil
}

// HopsOff tells whether next hops are remembered.
func (e *Programs) HopsOff() (bool, error) {
	st, err := e.route()
	return st.Off != 0, err
}

// hopKey and hop are struct fwd_hop_key and struct fwd_hop of bpf/entry.c
// (hop with the tail padding the kernel's value size includes).
type hopKey struct {
	Saddr, Daddr, Ifindex uint32
	Tos, Proto            uint8
	Pad                   uint16
}

type hop struct {
	Born                      uint64
	Epoch, Ifindex, Kind, MTU uint32
	Dmac, Smac                [6]byte
	Pad                       uint32
}

// CountHops counts the next hops in the forward stage's memory: all of
// them, and those it would still use now (of the current epoch and looked
// up in the current second); the LRU keeps the others until it needs room.
func (e *Programs) CountHops() (all, usable int, err error) {
	st, err := e.route()
	if err != nil {
		return 0, 0, err
	}
	now := uint64(ctmap.Now())
	var k hopKey
	var h hop
	it := e.Hops.Iterate()
	for it.Next(&k, &h) {
		all++
		if st.Off == 0 && h.Epoch == st.Epoch && h.Born == now {
			usable++
		}
	}
	if err := it.Err(); err != nil {
		return 0, 0, fmt.Errorf("count next hops: %w", err)
	}
	return all, usable, nil
}
