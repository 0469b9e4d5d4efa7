package bench

import (
	"fmt"
	"net/netip"
	"strings"
)

// service is one ClusterIP-style service: VIP:port/tcp → backends.
type service struct {
	vip      netip.AddrPort
	backends []netip.AddrPort
}

// servicesAhead returns n filler services followed by the measured ones.
// Fillers use VIPs in 10.97.0.0/16 and backends in 10.98.0.0/16 that
// nothing in the lab answers on: no packet ever matches them, they only
// stand in front of the measured services, as other services do on a node.
func servicesAhead(n int, measured ...service) []service {
	return append(fillers(97, 98, n, 3), measured...)
}

// fillers are n services with VIPs 10.<vipNet>.x.y:80 and nb backends each
// at 10.<beNet>.x.y:8080+k (n < 65536).
func fillers(vipNet, beNet byte, n, nb int) []service {
	out := make([]service, 0, n)
	for i := 1; i <= n; i++ {
		hi, lo := byte(i>>8), byte(i)
		svc := service{vip: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, vipNet, hi, lo}), 80)}
		for b := range nb {
			svc.backends = append(svc.backends, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, beNet, hi, lo}), uint16(8080+b)))
		}
		out = append(out, svc)
	}
	return out
}

// iptablesRules renders services the way kube-proxy's iptables mode does,
// for iptables-restore: PREROUTING → KUBE-SERVICES (one rule per service,
// matched in order) → KUBE-SVC-* (statistic random jumps, probability
// 1/(remaining backends)) → KUBE-SEP-* (hairpin masquerade mark + DNAT),
// and the KUBE-POSTROUTING masquerade of marked packets.
func iptablesRules(svcs []service) string {
	var decl, rules strings.Builder
	decl.WriteString("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n")
	decl.WriteString(":KUBE-SERVICES - [0:0]\n:KUBE-POSTROUTING - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n")
	rules.WriteString("-A PREROUTING -j KUBE-SERVICES\n-A POSTROUTING -j KUBE-POSTROUTING\n")
	rules.WriteString("-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n")
	rules.WriteString("-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n")
	rules.WriteString("-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n")
	rules.WriteString("-A KUBE-POSTROUTING -j MASQUERADE\n")
	var svcRules, sepRules strings.Builder
	for i, s := range svcs {
		svc := fmt.Sprintf("KUBE-SVC-%016X", i)
		fmt.Fprintf(&decl, ":%s - [0:0]\n", svc)
		fmt.Fprintf(&rules, "-A KUBE-SERVICES -d %s/32 -p tcp -m tcp --dport %d -j %s\n", s.vip.Addr(), s.vip.Port(), svc)
		for j, b := range s.backends {
			sep := fmt.Sprintf("KUBE-SEP-%014X%02X", i, j)
			fmt.Fprintf(&decl, ":%s - [0:0]\n", sep)
			if left := len(s.backends) - j; left > 1 {
				fmt.Fprintf(&svcRules, "-A %s -m statistic --mode random --probability %.11f -j %s\n", svc, 1/float64(left), sep)
			} else {
				fmt.Fprintf(&svcRules, "-A %s -j %s\n", svc, sep)
			}
			fmt.Fprintf(&sepRules, "-A %s -s %s/32 -j KUBE-MARK-MASQ\n", sep, b.Addr())
			fmt.Fprintf(&sepRules, "-A %s -p tcp -m tcp -j DNAT --to-destination %s\n", sep, b)
		}
	}
	return decl.String() + rules.String() + svcRules.String() + sepRules.String() + "COMMIT\n"
}

// nftRules renders services the way kube-proxy's nftables mode does: one
// verdict map from VIP . proto . port to a per-service chain (a hash lookup
// whatever the number of services), `numgen random mod N vmap` to pick an
// endpoint chain, and a DNAT per endpoint. The per-service endpoint vmaps
// are named rather than anonymous: nft allocates anonymous set names by
// scanning every set of the table, which made loading 10000 services take
// 25-35 s here against ~7 s; on the packet path both are the same lookup.
func nftRules(svcs []service) string {
	var b strings.Builder
	b.WriteString("table ip kube-proxy {\n")
	b.WriteString("\tchain mark-for-masquerade { meta mark set meta mark or 0x4000; }\n")
	b.WriteString("\tchain masquerading {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n")
	b.WriteString("\t\tmeta mark & 0x4000 == 0 return\n\t\tmeta mark set meta mark xor 0x4000\n\t\tmasquerade fully-random\n\t}\n")
	b.WriteString("\tchain nat-prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tjump services\n\t}\n")
	b.WriteString("\tmap service-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n\t\telements = {\n")
	for i, s := range svcs {
		sep := ","
		if i == len(svcs)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "\t\t\t%s . tcp . %d : goto service-%d%s\n", s.vip.Addr(), s.vip.Port(), i, sep)
	}
	b.WriteString("\t\t}\n\t}\n")
	b.WriteString("\tchain services {\n\t\tip daddr . meta l4proto . th dport vmap @service-ips\n\t}\n")
	for i, s := range svcs {
		var arms []string
		for j := range s.backends {
			arms = append(arms, fmt.Sprintf("%d : goto endpoint-%d-%d", j, i, j))
		}
		fmt.Fprintf(&b, "\tmap service-%d-endpoints {\n\t\ttypeof numgen random mod %d : verdict\n\t\telements = { %s }\n\t}\n", i, len(s.backends), strings.Join(arms, ", "))
		fmt.Fprintf(&b, "\tchain service-%d {\n\t\tnumgen random mod %d vmap @service-%d-endpoints\n\t}\n", i, len(s.backends), i)
		for j, be := range s.backends {
			fmt.Fprintf(&b, "\tchain endpoint-%d-%d {\n\t\tip saddr %s jump mark-for-masquerade\n\t\tmeta l4proto tcp dnat to %s\n\t}\n", i, j, be.Addr(), be)
		}
	}
	b.WriteString("}\n")
	return b.String()
}
