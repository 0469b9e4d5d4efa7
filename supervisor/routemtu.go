package supervisor

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// routeMTUs lists the IPv4 routes of every table that carry an MTU of
// their own (`ip route ... mtu N`), the smallest per prefix. The kernel's
// forwarding honours them and bpf_fib_lookup does not, so the forward stage
// is told about them (entry.Programs.SetRouteMTUs).
func routeMTUs() (map[netip.Prefix]uint32, error) {
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	out := map[netip.Prefix]uint32{}
	for _, r := range routes {
		if r.MTU <= 0 {
			continue
		}
		p := netip.MustParsePrefix("0.0.0.0/0")
		if r.Dst != nil {
			a, ok := netip.AddrFromSlice(r.Dst.IP.To4())
			if !ok {
				continue
			}
			ones, _ := r.Dst.Mask.Size()
			p = netip.PrefixFrom(a, ones)
		}
		if cur, ok := out[p]; !ok || uint32(r.MTU) < cur {
			out[p] = uint32(r.MTU)
		}
	}
	return out, nil
}

func (s *Supervisor) syncRouteMTUs() error {
	mtus, err := routeMTUs()
	if err != nil {
		return err
	}
	return s.entry.SetRouteMTUs(mtus)
}
