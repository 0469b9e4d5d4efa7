package ctmap

import (
	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
)

// Scan visits every entry of a CT map with batch lookups. fn sees copies;
// returning false stops.
func Scan(m *ebpf.Map, fn func(k *abi.CTTuple, v *abi.CTEntry) bool) error {
	return pin.Scan(m, fn)
}
