package nat

import (
	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/natmap"
	"github.com/hotpath/hotpath/core/plugin"
)

// Indexes of the nat_stats map (enum nat_stat in bpf/nat.h).
const (
	natStatAlloc     = 0
	natStatCollision = 1
	natStatExhausted = 2
	natStatReclaimed = 3
	natStatRepaired  = 4
	natStatICMPError = 5
)

func countEgress(m *ebpf.Map) (int, error) {
	n := 0
	err := natmap.Scan(m, func(k *abi.NAT4Key, _ *abi.NAT4Entry) bool {
		if k.Dir == abi.NATEgress {
			n++
		}
		return true
	})
	return n, err
}

// Metrics are the stats as the supervisor exports them (hotpath_nat_<name>).
func (s Stats) Metrics() []plugin.Metric {
	return []plugin.Metric{
		{Name: "mappings", Help: "Masqueraded flows with a mapping.", Type: "gauge", Value: float64(s.Mappings)},
		{Name: "allocations_total", Help: "Ports handed out to new flows.", Type: "counter", Value: float64(s.Allocations)},
		{Name: "collisions_total", Help: "Port probes that found the port taken by a live flow.", Type: "counter", Value: float64(s.Collisions)},
		{Name: "exhaustion_drops_total", Help: "New flows dropped because no port was free.", Type: "counter", Value: float64(s.Exhausted)},
		{Name: "reclaimed_total", Help: "Ports taken over by the datapath from flows whose CT entry ended.", Type: "counter", Value: float64(s.Reclaimed)},
		{Name: "repaired_total", Help: "Reply entries re-created after LRU eviction.", Type: "counter", Value: float64(s.Repaired)},
		{Name: "icmp_errors_total", Help: "ICMP errors translated back to a pod.", Type: "counter", Value: float64(s.ICMPErrors)},
		{Name: "orphans_purged_total", Help: "Mappings deleted by GC because their flow's CT entry was gone.", Type: "counter", Value: float64(s.GC.Purged)},
		{Name: "gc_runs_total", Help: "NAT GC passes.", Type: "counter", Value: float64(s.GC.Runs)},
		{Name: "gc_signals_total", Help: "NAT GC passes started by an exhaustion signal from the datapath.", Type: "counter", Value: float64(s.GC.Signals)},
	}
}
