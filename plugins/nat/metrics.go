package nat

import (
	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/natmap"
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
