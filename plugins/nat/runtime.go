package nat

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/hashicorp/go-hclog"

	"github.com/hotpath/hotpath/core/natmap"
	"github.com/hotpath/hotpath/core/pin"
)

// runtime is an activated instance: its maps and, with the GC lease, the GC
// and the exclusion upkeep.
type runtime struct {
	nat  *ebpf.Map
	ct   natmap.CTMaps
	priv map[string]*ebpf.Map
	gc   *GC // nil without the lease

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	gcErr   error // the last GC pass's
	exclErr error // the last exclusion refresh's
}

func refreshOnce(l pin.Layout, s Settings) error {
	priv, err := OpenPrivate(l)
	if err != nil {
		return err
	}
	defer pin.CloseAll(priv)
	return RefreshExclusions(priv[natMapNatExcl], s)
}

func start(l pin.Layout, s Settings, lease bool, log hclog.Logger) (*runtime, error) {
	nat, err := natmap.Open(l)
	if err != nil {
		return nil, err
	}
	ct, err := natmap.OpenCT(l)
	if err != nil {
		nat.Close()
		return nil, err
	}
	priv, err := OpenPrivate(l)
	if err != nil {
		nat.Close()
		ct.Close()
		return nil, err
	}
	rt := &runtime{nat: nat, ct: ct, priv: priv}
	ctx, cancel := context.WithCancel(context.Background())
	rt.cancel = cancel
	if !lease {
		return rt, nil
	}
	rt.gc = &GC{NAT: nat, CT: ct, Log: log}
	rt.setExclErr(RefreshExclusions(priv[natMapNatExcl], s))
	rt.wg.Add(2)
	go func() {
		defer rt.wg.Done()
		// The first pass at once, as CT GC does: a new lease holder
		// does not know how long nobody purged.
		_, err := rt.gc.RunOnce(false)
		rt.setGCErr(err)
		rt.gc.Run(ctx, s.GCInterval, priv[natMapNatSignal], rt.setGCErr)
	}()
	go func() {
		defer rt.wg.Done()
		t := time.NewTicker(s.ListenRefresh)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				rt.setExclErr(RefreshExclusions(priv[natMapNatExcl], s))
			}
		}
	}()
	return rt, nil
}

// setGCErr and setExclErr record the outcome of the latest GC pass and
// exclusion refresh: a success clears that activity's earlier failure.
func (rt *runtime) setGCErr(err error) {
	rt.mu.Lock()
	rt.gcErr = err
	rt.mu.Unlock()
}

func (rt *runtime) setExclErr(err error) {
	rt.mu.Lock()
	rt.exclErr = err
	rt.mu.Unlock()
}

func (rt *runtime) err() error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.gcErr != nil {
		return rt.gcErr
	}
	return rt.exclErr
}

func (rt *runtime) stop() {
	rt.cancel()
	rt.wg.Wait()
	rt.nat.Close()
	rt.ct.Close()
	pin.CloseAll(rt.priv)
}

// Stats are the nat counters: the datapath's (summed over CPUs), the GC's
// and the number of live mappings.
type Stats struct {
	Mappings    int     `json:"mappings"` // flows with a mapping (egress entries)
	Allocations uint64  `json:"allocations"`
	Collisions  uint64  `json:"collisions"`
	Exhausted   uint64  `json:"exhausted"`
	Reclaimed   uint64  `json:"reclaimed"`
	Repaired    uint64  `json:"repaired"`
	ICMPErrors  uint64  `json:"icmp_errors"`
	GC          GCStats `json:"gc"`
}

func (rt *runtime) stats() (Stats, error) {
	var st Stats
	for idx, dst := range map[uint32]*uint64{
		natStatAlloc: &st.Allocations, natStatCollision: &st.Collisions, natStatExhausted: &st.Exhausted,
		natStatReclaimed: &st.Reclaimed, natStatRepaired: &st.Repaired, natStatICMPError: &st.ICMPErrors,
	} {
		var per []uint64
		if err := rt.priv[natMapNatStats].Lookup(&idx, &per); err != nil {
			return st, fmt.Errorf("read nat stats: %w", err)
		}
		for _, v := range per {
			*dst += v
		}
	}
	n, err := countEgress(rt.nat)
	if err != nil {
		return st, err
	}
	st.Mappings = n
	if rt.gc != nil {
		st.GC = rt.gc.Stats()
	}
	return st, nil
}
