package tunnel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/tunnels"
)

// The routes live in the shared tunnel4 map alone: the supervisor pins it,
// so they outlive every instance and upgrade of the plugin, and the
// datapath never sees a route table the plugin would have to rebuild.

func key(p netip.Prefix) abi.AbiHpTunnelKey {
	a := p.Addr().As4()
	return abi.AbiHpTunnelKey{Prefixlen: uint32(p.Bits()), Addr: binary.NativeEndian.Uint32(a[:])}
}

func addrOf(v uint32) netip.Addr {
	var a [4]byte
	binary.NativeEndian.PutUint32(a[:], v)
	return netip.AddrFrom4(a)
}

// addRoute checks r and writes it, replacing the route of the same CIDR.
// A CIDR overlapping a local pod CIDR, a remote that is this node or is not
// reachable on the underlay: an error, nothing written.
func addRoute(m *ebpf.Map, s Settings, r tunnels.Route) (tunnels.Route, error) {
	p, remote, err := r.Parse()
	if err != nil {
		return r, err
	}
	for _, l := range s.Local {
		if l.Overlaps(p) {
			return r, fmt.Errorf("tunnel %s: overlaps the local pod CIDR %s", p, l)
		}
	}
	if err := checkRemote(remote, s.Ifindex); err != nil {
		return r, fmt.Errorf("tunnel %s: %w", p, err)
	}
	ra := remote.As4()
	v := abi.AbiHpTunnelVal{Remote: binary.NativeEndian.Uint32(ra[:]), Vni: r.VNI}
	if err := m.Update(key(p), v, ebpf.UpdateAny); err != nil {
		return r, fmt.Errorf("tunnel %s: write route: %w", p, err)
	}
	return r, nil
}

// checkRemote accepts an underlay address the kernel routes through a
// device other than the overlay and that is not this node's own.
func checkRemote(remote netip.Addr, overlay int) error {
	rs, err := netlink.RouteGet(net.IP(remote.AsSlice()))
	if err != nil || len(rs) == 0 {
		return fmt.Errorf("remote %s: not reachable on the underlay (no route): %v", remote, err)
	}
	switch {
	case rs[0].Type == unix.RTN_LOCAL:
		return fmt.Errorf("remote %s: an address of this node, want another node's", remote)
	case rs[0].LinkIndex == overlay:
		return fmt.Errorf("remote %s: routed through the overlay device, want an underlay address", remote)
	case rs[0].Type != unix.RTN_UNICAST:
		return fmt.Errorf("remote %s: not reachable on the underlay (route type %d)", remote, rs[0].Type)
	}
	return nil
}

func delRoute(m *ebpf.Map, cidr string) error {
	p, err := tunnels.ParseCIDR(cidr)
	if err != nil {
		return err
	}
	if err := m.Delete(key(p)); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("tunnel %s: no such route", p)
		}
		return fmt.Errorf("tunnel %s: delete route: %w", p, err)
	}
	return nil
}

// listRoutes returns every route, ordered by CIDR.
func listRoutes(m *ebpf.Map) ([]tunnels.Route, error) {
	out := []tunnels.Route{}
	var k abi.AbiHpTunnelKey
	var v abi.AbiHpTunnelVal
	it := m.Iterate()
	for it.Next(&k, &v) {
		p := netip.PrefixFrom(addrOf(k.Addr), int(k.Prefixlen))
		out = append(out, tunnels.Route{CIDR: p.String(), Remote: addrOf(v.Remote).String(), VNI: v.Vni})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list tunnel routes: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CIDR < out[j].CIDR })
	return out, nil
}
