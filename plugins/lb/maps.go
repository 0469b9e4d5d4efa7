package lb

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/core/services"
)

// Shared maps the lb plugin writes (the supervisor creates them).
var sharedNames = []string{
	abi.AbiMapLb4Services, abi.AbiMapLb4Backends, abi.AbiMapLb4Slots,
	abi.AbiMapLb4Revnat, abi.AbiMapLb4Maglev, abi.AbiMapLb4Affinity,
}

// StateMap is the name of the plugin-private map pinned under
// layout.PluginPrivate("lb"): id counters and the seed the Maglev tables
// were built with. Everything else is read back from the shared maps.
const StateMap = "state"

// state is the value of the private state map. Ids count up and wrap so a
// deleted service's or backend's id is not reused while CT entries that
// name it may still be alive.
type state struct {
	NextSvc     uint32
	NextBackend uint32
	Seed        uint32 // seed of the current Maglev tables
	SeedSet     uint32
}

// stateSpec carries BTF for key and value, like every pinned map, so
// `bpftool map dump pinned` prints the fields.
var stateSpec = &ebpf.MapSpec{
	Name: "lb_state", Type: ebpf.Array, KeySize: 4, ValueSize: 16, MaxEntries: 1,
	Key: u32BTF, Value: &btf.Struct{Name: "lb_state", Size: 16, Members: []btf.Member{
		{Name: "next_svc", Type: u32BTF, Offset: 0},
		{Name: "next_backend", Type: u32BTF, Offset: 32},
		{Name: "seed", Type: u32BTF, Offset: 64},
		{Name: "seed_set", Type: u32BTF, Offset: 96},
	}},
}

var u32BTF = &btf.Int{Name: "__u32", Size: 4, Encoding: btf.Unsigned}

// Maps are the lb plugin's open maps.
type Maps struct {
	Services, Backends, Slots, RevNat, Maglev, Affinity *ebpf.Map
	State                                               *ebpf.Map
	// graceOuter and graceInner are private (newGrace): updating the
	// one with the other waits for an RCU grace period.
	graceOuter, graceInner *ebpf.Map
}

// OpenMaps opens the shared lb maps pinned under l, checked against this
// build's specs, and opens or creates the private state map.
func OpenMaps(l pin.Layout) (*Maps, error) {
	var err error
	ms := &Maps{}
	dst := []**ebpf.Map{&ms.Services, &ms.Backends, &ms.Slots, &ms.RevNat, &ms.Maglev, &ms.Affinity}
	for i, name := range sharedNames {
		// Any size: the supervisor sizes lb maps (config, live resize).
		m, err := pin.OpenPinned(l, name)
		if err != nil {
			ms.Close()
			return nil, err
		}
		*dst[i] = m
	}
	if ms.graceOuter, ms.graceInner, err = newGrace(); err != nil {
		ms.Close()
		return nil, err
	}
	path := filepath.Join(l.PluginPrivate("lb"), StateMap)
	if ms.State, _, err = pin.OpenOrCreate(stateSpec, path); err != nil {
		ms.Close()
		return nil, err
	}
	return ms, nil
}

// Close drops this process's references; the pins keep the maps.
func (ms *Maps) Close() {
	for _, m := range []*ebpf.Map{ms.Services, ms.Backends, ms.Slots, ms.RevNat, ms.Maglev, ms.Affinity, ms.State, ms.graceOuter, ms.graceInner} {
		if m != nil {
			m.Close()
		}
	}
}

func (ms *Maps) readState() (state, error) {
	var st state
	if err := ms.State.Lookup(uint32(0), &st); err != nil {
		return st, fmt.Errorf("read lb state: %w", err)
	}
	return st, nil
}

func (ms *Maps) writeState(st state) error {
	if err := ms.State.Put(uint32(0), st); err != nil {
		return fmt.Errorf("write lb state: %w", err)
	}
	return nil
}

// The lb maps hold addresses and ports in network byte order, as the
// packet does: a uint32 whose memory is the address's four bytes.

func addrU32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.NativeEndian.Uint32(b[:])
}

func u32Addr(v uint32) netip.Addr {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

func ntohs(v uint16) uint16 { return htons(v) }

func keyOf(v services.VIP) abi.LB4Key {
	return abi.LB4Key{Address: addrU32(v.Addr), Dport: htons(v.Port), Proto: uint8(v.Proto)}
}

func vipOf(k abi.LB4Key) services.VIP {
	return services.VIP{Addr: u32Addr(k.Address), Port: ntohs(k.Dport), Proto: services.Proto(k.Proto)}
}

func backendOf(b abi.LB4Backend) services.Backend {
	return services.Backend{Addr: netip.AddrPortFrom(u32Addr(b.Address), ntohs(b.Port)), Weight: b.Weight}
}
