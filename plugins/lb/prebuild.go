package lb

import (
	"runtime"
	"slices"

	"github.com/hotpath/hotpath/core/services"
	"github.com/hotpath/hotpath/plugins/lb/maglev"
)

// prebuildAhead bounds how many tables are built ahead of the commits
// (64 KiB each at the default M).
const prebuildAhead = 64

// positions is a Maglev table built before its service's backend ids are
// known: entry j is 1 + the backend's index in the service's backends
// sorted by address, the order commit gives them ids in. A table depends
// on the backends' keys and weights, not on their ids, so replacing each
// position with its id gives exactly the table commit would build.
type positions []uint32

// prebuilder builds the Maglev tables of a bulk apply on the other CPUs
// while the services are committed one by one, in order.
type prebuilder struct {
	out  []chan positions
	room chan struct{}
	done chan struct{}
}

// prebuild starts building the tables of specs (defaults applied). table
// hands them out in order; stop must be called when the apply ends.
func (s *Store) prebuild(specs []services.ServiceSpec) *prebuilder {
	p := &prebuilder{out: make([]chan positions, len(specs)), room: make(chan struct{}, prebuildAhead), done: make(chan struct{})}
	for i := range p.out {
		p.out[i] = make(chan positions, 1)
	}
	work := make(chan int)
	for range max(1, runtime.GOMAXPROCS(0)-1) {
		go func() {
			for i := range work {
				p.out[i] <- s.buildPositions(specs[i])
			}
		}()
	}
	go func() {
		defer close(work)
		for i := range specs {
			select {
			case p.room <- struct{}{}:
			case <-p.done:
				return
			}
			select {
			case work <- i:
			case <-p.done:
				return
			}
		}
	}()
	return p
}

// table returns the prebuilt table of spec i (nil: none or it failed; the
// commit then builds it itself and reports any error).
func (p *prebuilder) table(i int) positions {
	t := <-p.out[i]
	<-p.room
	return t
}

func (p *prebuilder) stop() { close(p.done) }

// buildPositions is the table of a new service, as positions.
func (s *Store) buildPositions(spec services.ServiceSpec) positions {
	if spec.Algorithm != services.Maglev || len(spec.Backends) == 0 {
		return nil
	}
	bs := slices.Clone(spec.Backends)
	slices.SortFunc(bs, func(a, b services.Backend) int { return a.Addr.Compare(b.Addr) })
	mb := make([]maglev.Backend, len(bs))
	for i, b := range bs {
		mb[i] = maglev.Backend{ID: uint32(i + 1), Key: b.Key(), Weight: uint32(b.Weight)}
	}
	t, err := maglev.Build(mb, spec.TableSize, s.seed)
	if err != nil {
		return nil
	}
	return t
}

// ids turns positions into the backend ids of members (ordered by
// address, as commit orders them); nil if t was not built for m entries
// over that many backends.
func (t positions) ids(members []member, m uint32) []uint32 {
	if len(t) != int(m) {
		return nil
	}
	for _, pos := range t {
		if pos == 0 || int(pos) > len(members) {
			return nil
		}
	}
	for j, pos := range t {
		t[j] = members[pos-1].id
	}
	return t
}
