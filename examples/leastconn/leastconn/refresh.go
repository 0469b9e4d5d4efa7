package leastconn

import (
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/pin"
)

// refresher rebuilds the counts every interval until stopped.
type refresher struct {
	counts *ebpf.Map
	quit   chan struct{}
	done   chan struct{}
}

// startRefresh refreshes once before returning, so the counts are right as
// soon as this instance holds the lease, then keeps refreshing.
func startRefresh(l pin.Layout, every time.Duration, record func(map[uint32]uint64, error)) (*refresher, error) {
	counts, err := OpenCounts(l)
	if err != nil {
		return nil, err
	}
	r := &refresher{counts: counts, quit: make(chan struct{}), done: make(chan struct{})}
	record(Refresh(l, counts))
	go func() {
		defer close(r.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-r.quit:
				return
			case <-t.C:
				record(Refresh(l, counts))
			}
		}
	}()
	return r, nil
}

func (r *refresher) stop() {
	close(r.quit)
	<-r.done
	r.counts.Close()
}
