package entry

import "fmt"

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
