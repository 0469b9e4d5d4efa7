package nat

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/natmap"
	"github.com/hotpath/hotpath/core/pin"
)

// Name is the plugin's name: its pins live under plugins/nat/.
const Name = "nat"

// Slots the nat stages occupy, by name.
var (
	SlotNAT     = abi.SlotName(abi.AbiHpSlotHP_SLOT_NAT)
	SlotRevSNAT = abi.SlotName(abi.AbiHpSlotHP_SLOT_REV_SNAT)
)

// Slots are the nat plugin's slots, in pipeline order.
var Slots = []string{SlotRevSNAT, SlotNAT}

// Hooks: both run where a packet enters the node (the pipeline runs once
// per node): masquerade at a pod device's ingress for what the kernel would
// route out of the masquerade device, reverse translation where a reply
// arrives on it, before ct. At egress hooks both slots are skipped without
// a tail call.
var Hooks = map[string][]string{SlotNAT: {"ingress"}, SlotRevSNAT: {"ingress"}}

var programOf = map[string]string{SlotNAT: natProgHpNat, SlotRevSNAT: natProgHpRevSnat}

// Private maps, pinned under plugins/nat/maps: shared by every generation's
// programs and every instance of the plugin, so a restart or an upgrade
// keeps the exclusion bitmap, the counters and the signal ring.
var privateMaps = []string{natMapNatExcl, natMapNatStats, natMapNatSignal}

// OpenPrivate opens the plugin's private maps, creating and pinning those
// that do not exist yet.
func OpenPrivate(l pin.Layout) (map[string]*ebpf.Map, error) {
	spec, err := loadNat()
	if err != nil {
		return nil, fmt.Errorf("load nat spec: %w", err)
	}
	return l.OpenPrivate(Name, spec, privateMaps)
}

// LoadStages loads both nat stages against the shared maps and the private
// maps pinned under l, configured by s, and pins them for generation gen.
// It returns slot name -> pin path.
func LoadStages(l pin.Layout, gen uint32, s Settings) (map[string]string, error) {
	spec, err := loadNat()
	if err != nil {
		return nil, fmt.Errorf("load nat spec: %w", err)
	}
	if err := setConsts(spec, s); err != nil {
		return nil, err
	}
	maps, err := pin.OpenShared(l)
	if err != nil {
		return nil, err
	}
	defer pin.CloseAll(maps)
	pin.Fit(spec, maps) // shared maps the supervisor sized from its config
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
		return nil, fmt.Errorf("load nat stages: %w", err)
	}
	defer coll.Close()
	pins := map[string]string{}
	for _, slot := range Slots {
		path, err := l.PinProg(coll.Programs[programOf[slot]], Name, gen, slot)
		if err != nil {
			return nil, err
		}
		pins[slot] = path
	}
	return pins, nil
}

func setConsts(spec *ebpf.CollectionSpec, s Settings) error {
	var cnet, cmask, xnet, xmask [MaxCIDRs]uint32
	fill := func(net, mask *[MaxCIDRs]uint32, ps []prefix) {
		for i, p := range ps {
			net[i], mask[i] = p.net, p.mask
		}
	}
	fill(&cnet, &cmask, toPrefixes(s.Cluster))
	fill(&xnet, &xmask, toPrefixes(s.Exclude))
	consts := map[string]any{
		natVarNatIfindex:     uint32(s.Ifindex),
		natVarNatAddr:        natmap.Addr4(s.Addr),
		natVarNatPortMin:     uint32(s.PortMin),
		natVarNatPortMax:     uint32(s.PortMax),
		natVarNatTries:       s.Tries,
		natVarNatClusterN:    uint32(len(s.Cluster)),
		natVarNatClusterNet:  cnet,
		natVarNatClusterMask: cmask,
		natVarNatExcludeN:    uint32(len(s.Exclude)),
		natVarNatExcludeNet:  xnet,
		natVarNatExcludeMask: xmask,
	}
	for name, v := range consts {
		if err := spec.Variables[name].Set(v); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	return nil
}
