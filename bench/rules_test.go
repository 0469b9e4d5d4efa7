package bench

import (
	"net/netip"
	"strings"
	"testing"
)

func TestRulesPutMeasuredServiceLast(t *testing.T) {
	m := service{vip: netip.MustParseAddrPort("10.96.0.10:80"), backends: []netip.AddrPort{
		netip.MustParseAddrPort("10.240.2.2:8080"), netip.MustParseAddrPort("10.240.3.2:8080"), netip.MustParseAddrPort("10.240.4.2:8080")}}
	svcs := servicesAhead(1000, m)
	if len(svcs) != 1001 || svcs[1000].vip != m.vip {
		t.Fatalf("%d services, last %v", len(svcs), svcs[len(svcs)-1].vip)
	}
	seen := map[netip.Addr]bool{}
	for _, s := range svcs {
		if seen[s.vip.Addr()] {
			t.Fatalf("VIP %v twice", s.vip)
		}
		seen[s.vip.Addr()] = true
	}

	ipt := iptablesRules(svcs)
	var order []string
	for _, line := range strings.Split(ipt, "\n") {
		if strings.HasPrefix(line, "-A KUBE-SERVICES ") {
			order = append(order, line)
		}
	}
	if len(order) != 1001 || !strings.Contains(order[1000], "-d 10.96.0.10/32") {
		t.Fatalf("KUBE-SERVICES has %d rules, last %q", len(order), order[len(order)-1])
	}
	for _, want := range []string{"--probability 0.33333333333", "--probability 0.50000000000", "-j DNAT --to-destination 10.240.4.2:8080", "COMMIT\n"} {
		if !strings.Contains(ipt, want) {
			t.Errorf("iptables rules lack %q", want)
		}
	}

	nft := nftRules(svcs)
	for _, want := range []string{"10.96.0.10 . tcp . 80 : goto service-1000\n", "numgen random mod 3 vmap @service-1000-endpoints", "dnat to 10.240.3.2:8080"} {
		if !strings.Contains(nft, want) {
			t.Errorf("nft rules lack %q", want)
		}
	}
}
