// Package natmap is the contract of the nat4 map (masquerade mappings):
// decoding, listing and flushing from the pins, and the rule that ties a
// mapping's life to its flow's CT entry. The CLI and the nat plugin both use
// it, so `hotpath nat list` works with no supervisor running.
package natmap

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/pin"
)

// Open opens the pinned nat4 map.
func Open(l pin.Layout) (*ebpf.Map, error) {
	m, err := ebpf.LoadPinnedMap(l.Map(abi.MapNAT4), nil)
	if err != nil {
		return nil, fmt.Errorf("open nat map %s: %w", l.Map(abi.MapNAT4), err)
	}
	return m, nil
}

// Scan visits every entry of nat4 with batch lookups. fn sees copies;
// returning false stops.
func Scan(m *ebpf.Map, fn func(k *abi.NAT4Key, v *abi.NAT4Entry) bool) error {
	return pin.Scan(m, fn)
}

// Flow is the original tuple of a masqueraded flow, as the pod sent it.
type Flow struct {
	Pod, Remote         uint32 // network order, as in the maps
	PodPort, RemotePort uint16 // network order
	Proto               uint8
}

// FlowOf returns the flow an entry belongs to, from either of its two entries.
func FlowOf(k *abi.NAT4Key, v *abi.NAT4Entry) Flow {
	if k.Dir == abi.NATIngress {
		return Flow{Pod: v.Addr, PodPort: v.Port, Remote: k.Saddr, RemotePort: k.Sport, Proto: k.Nexthdr}
	}
	return Flow{Pod: k.Saddr, PodPort: k.Sport, Remote: k.Daddr, RemotePort: k.Dport, Proto: k.Nexthdr}
}

// EgressKey is the key of the flow's egress entry.
func (f Flow) EgressKey() abi.NAT4Key {
	return abi.NAT4Key{Saddr: f.Pod, Sport: f.PodPort, Daddr: f.Remote, Dport: f.RemotePort, Nexthdr: f.Proto, Dir: abi.NATEgress}
}

// IngressKey is the key of the flow's reply entry when it left as addr:port.
func (f Flow) IngressKey(addr uint32, port uint16) abi.NAT4Key {
	return abi.NAT4Key{Saddr: f.Remote, Sport: f.RemotePort, Daddr: addr, Dport: port, Nexthdr: f.Proto, Dir: abi.NATIngress}
}

// CTMaps are the CT maps a mapping's life is read from.
type CTMaps struct {
	TCP, Other *ebpf.Map // ct4, ct_any4
}

// Lifetime is the latest lifetime (datapath clock, seconds) of the flow's CT
// entries: the one created where it left the node (IN) and the one created
// where it entered (OUT). ok is false when neither exists. The datapath
// (bpf/nat.h, nat_flow_live) applies the same rule.
func (c CTMaps) Lifetime(f Flow) (lifetime uint32, ok bool) {
	m := c.Other
	if f.Proto == 6 {
		m = c.TCP
	}
	for _, flag := range []uint8{abi.TupleIn, abi.TupleOut} {
		k := abi.CTTuple{Saddr: f.Pod, Sport: f.PodPort, Daddr: f.Remote, Dport: f.RemotePort, Nexthdr: f.Proto, Flags: flag}
		if e, err := ctmap.Lookup(m, &k); err == nil { // either layout
			ok = true
			lifetime = max(lifetime, e.Lifetime)
		}
	}
	return lifetime, ok
}

// Live tells whether the flow still has a CT entry that has not expired.
func (c CTMaps) Live(f Flow, now uint32) bool {
	l, ok := c.Lifetime(f)
	return ok && l >= now
}

// OpenCT opens the pinned CT maps.
func OpenCT(l pin.Layout) (CTMaps, error) {
	t, err := ebpf.LoadPinnedMap(l.Map(abi.MapCT4), nil)
	if err != nil {
		return CTMaps{}, fmt.Errorf("open ct map %s: %w", l.Map(abi.MapCT4), err)
	}
	o, err := ebpf.LoadPinnedMap(l.Map(abi.MapCTAny4), nil)
	if err != nil {
		t.Close()
		return CTMaps{}, fmt.Errorf("open ct map %s: %w", l.Map(abi.MapCTAny4), err)
	}
	return CTMaps{TCP: t, Other: o}, nil
}

// Close closes both maps.
func (c CTMaps) Close() {
	c.TCP.Close()
	c.Other.Close()
}

// AddrPort converts a network-order address and port as the maps store them.
func AddrPort(addr uint32, port uint16) netip.AddrPort {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], addr)
	return netip.AddrPortFrom(netip.AddrFrom4(b), port<<8|port>>8)
}

// Addr4 converts an IPv4 address into the maps' network-order uint32.
func Addr4(a netip.Addr) uint32 {
	b := a.As4()
	return binary.NativeEndian.Uint32(b[:])
}

// Port converts a host-order port into the maps' network order.
func Port(p uint16) uint16 { return p<<8 | p>>8 }
