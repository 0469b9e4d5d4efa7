package bench

import (
	"fmt"
	"net/netip"
	"strings"
)

// setupNoHop connects the client straight to each backend with a veth pair
// of its own (10.250.k.1 <-> 10.250.k.2): no node namespace on the way, so
// no routing, no hook, no forwarding at all. What is left is the work of
// the two endpoints, which no node datapath can take away; the variant's
// ratio to plain routing is the most any node datapath can gain over it on
// this machine, measured in the same run.
func setupNoHop(_ *Context, e *labEnv, _ int) error {
	var conn []string
	for i, b := range e.backends {
		dev := fmt.Sprintf("nohop%d", i+1)
		near := netip.AddrFrom4([4]byte{10, 250, byte(i + 1), 1})
		far := netip.AddrFrom4([4]byte{10, 250, byte(i + 1), 2})
		if _, err := e.client.Exec("ip", "link", "add", dev, "type", "veth", "peer", "name", dev, "netns", b.NS.Name); err != nil {
			return fmt.Errorf("veth client-%s: %w", b.Name, err)
		}
		for _, end := range []struct {
			run  func(...string) ([]byte, error)
			addr netip.Addr
		}{{e.client.Exec, near}, {b.Exec, far}} {
			for _, cmd := range [][]string{
				{"ip", "addr", "add", end.addr.String() + "/30", "dev", dev},
				// As the lab's own veths: one segment per skb.
				{"ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off"},
				{"ip", "link", "set", dev, "up"},
			} {
				if out, err := end.run(cmd...); err != nil {
					return fmt.Errorf("%s: %w (%s)", strings.Join(cmd, " "), err, out)
				}
			}
		}
		conn = append(conn, netip.AddrPortFrom(far, rrPort).String())
		if i == 0 {
			e.tputAddr = netip.AddrPortFrom(far, iperfPort).String()
		}
	}
	e.connAddr = strings.Join(conn, ",")
	return nil
}
