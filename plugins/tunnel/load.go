package tunnel

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
)

// Name is the plugin's name: its pins live under plugins/tunnel/.
const Name = "tunnel"

// SlotTunnel is the one slot the plugin claims. It runs after lb-dnat, so
// a service's packet is tunnelled by the backend it was translated to.
var SlotTunnel = abi.SlotName(abi.AbiHpSlotHP_SLOT_TUNNEL)

// Slots are the tunnel plugin's slots.
var Slots = []string{SlotTunnel}

// Hooks: packets are encapsulated where they enter the node (a pod's
// device) and counted where they arrive decapsulated (the overlay device's
// ingress); at egress there is nothing to do.
var Hooks = map[string][]string{SlotTunnel: {"ingress"}}

// privateMaps outlive generations and instances: the counters.
var privateMaps = []string{tunnelMapTunStats}

// OpenPrivate opens the plugin's private maps, creating and pinning those
// that do not exist yet.
func OpenPrivate(l pin.Layout) (map[string]*ebpf.Map, error) {
	spec, err := loadTunnel()
	if err != nil {
		return nil, fmt.Errorf("load tunnel spec: %w", err)
	}
	return l.OpenPrivate(Name, spec, privateMaps)
}

// LoadStages loads the tunnel stage against the shared and private maps
// pinned under l, configured by s, and pins it for generation gen. It
// returns slot name -> pin path.
func LoadStages(l pin.Layout, gen uint32, s Settings) (map[string]string, error) {
	spec, err := loadTunnel()
	if err != nil {
		return nil, fmt.Errorf("load tunnel spec: %w", err)
	}
	var mac [6]byte
	copy(mac[:], s.MAC)
	consts := map[string]any{
		tunnelVarTunIfindex: uint32(s.Ifindex),
		tunnelVarTunMtu:     uint32(s.MTU),
		tunnelVarTunMac:     mac,
	}
	for name, v := range consts {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("set %s: %w", name, err)
		}
	}
	maps, err := pin.OpenShared(l)
	if err != nil {
		return nil, err
	}
	defer pin.CloseAll(maps)
	pin.Fit(spec, maps)
	priv, err := OpenPrivate(l)
	if err != nil {
		return nil, err
	}
	defer pin.CloseAll(priv)
	for n, m := range priv {
		maps[n] = m
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: maps})
	if err != nil {
		return nil, fmt.Errorf("load tunnel stage: %w", err)
	}
	defer coll.Close()
	path, err := l.PinProg(coll.Programs[tunnelProgHpTunnel], Name, gen, SlotTunnel)
	if err != nil {
		return nil, err
	}
	return map[string]string{SlotTunnel: path}, nil
}
