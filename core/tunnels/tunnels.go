// Package tunnels is what the hotpath CLI, the cluster sources and the tunnel
// plugin share: the arguments and answers of the tunnel plugin's Invoke
// commands. A route sends a remote pod CIDR to the node that owns it, through
// the overlay.
package tunnels

import (
	"fmt"
	"net/netip"
)

// Invoke commands of the tunnel plugin.
const (
	CmdAdd  = "tunnel-add"  // Route -> {}
	CmdDel  = "tunnel-del"  // DelArgs -> {}
	CmdList = "tunnel-list" // nothing -> []Route
)

// DefaultVNI is the VNI of a route that names none.
const DefaultVNI = 1

// MaxVNI is the largest VXLAN network identifier (24 bits).
const MaxVNI = 1<<24 - 1

// Route is the argument of tunnel-add and an element of tunnel-list
// (`hotpath tunnel list -o json` prints these fields).
type Route struct {
	CIDR   string `json:"cidr"`   // remote pod CIDR, e.g. "10.241.0.0/24"
	Remote string `json:"remote"` // underlay IPv4 address of the node that owns it
	VNI    uint32 `json:"vni"`    // 0 in tunnel-add: DefaultVNI
}

// DelArgs name the route to delete.
type DelArgs struct {
	CIDR string `json:"cidr"`
}

// Parse validates a route and returns its prefix (masked) and remote; a
// zero VNI becomes DefaultVNI.
func (r *Route) Parse() (netip.Prefix, netip.Addr, error) {
	p, err := ParseCIDR(r.CIDR)
	if err != nil {
		return p, netip.Addr{}, err
	}
	remote, err := netip.ParseAddr(r.Remote)
	if err != nil || !remote.Is4() || remote.IsUnspecified() || remote.IsMulticast() || remote.IsLoopback() {
		return p, remote, fmt.Errorf("tunnel %s: remote %q: want the IPv4 underlay address of a node", p, r.Remote)
	}
	if r.VNI == 0 {
		r.VNI = DefaultVNI
	}
	if r.VNI > MaxVNI {
		return p, remote, fmt.Errorf("tunnel %s: vni %d: at most %d", p, r.VNI, MaxVNI)
	}
	r.CIDR = p.String()
	return p, remote, nil
}

// ParseCIDR reads an IPv4 pod CIDR and masks it.
func ParseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return p, fmt.Errorf("tunnel cidr %q: want an IPv4 prefix like 10.241.0.0/24", s)
	}
	return p.Masked(), nil
}
