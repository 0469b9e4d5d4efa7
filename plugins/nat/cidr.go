package nat

import (
	"net/netip"

	"github.com/hotpath/hotpath/core/natmap"
)

// prefix is a CIDR as the datapath compares it: (addr & mask) == net, both
// in network order.
type prefix struct{ net, mask uint32 }

func toPrefixes(ps []netip.Prefix) []prefix {
	out := make([]prefix, 0, len(ps))
	for _, p := range ps {
		var m [4]byte
		for i := 0; i < p.Bits(); i++ {
			m[i/8] |= 0x80 >> (i % 8)
		}
		mask := natmap.Addr4(netip.AddrFrom4(m))
		out = append(out, prefix{net: natmap.Addr4(p.Masked().Addr()) & mask, mask: mask})
	}
	return out
}
