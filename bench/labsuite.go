package bench

import (
	"fmt"
	"net/netip"
	"time"
)

const (
	connDur     = 3 * time.Second // one connection-rate sample
	connWorkers = 4               // parallel dial loops in the client
	iperfSecs   = 3               // measured seconds per iperf3 sample (+1 omitted)
)

var (
	// connVIP → three backends on rrPort; tputVIP → the first backend's
	// iperf3 (all of an iperf3 test's connections must reach one server,
	// so the throughput service has one backend).
	connVIP = netip.MustParseAddrPort("10.96.0.10:80")
	tputVIP = netip.MustParseAddrPort("10.96.0.11:5201")
)

// labVariant is one way of getting from the client to the backends. Each
// variant gets a lab of its own; all labs exist at once, so the runs of
// every variant interleave and share the machine's noise evenly.
type labVariant struct {
	key   string // for comparison rows between variants
	name  string // row text
	ahead int    // services configured ahead of the measured one
	tput  bool   // also measure iperf3 throughput (only where it can differ)
	// setup configures the node namespace and sets the env's addresses.
	setup func(c *Context, e *labEnv, ahead int) error
	// connTarget and tputTarget are goals relative to plain routing.
	connTarget, tputTarget *Target
	// pending, if set, says what the variant needs before it can run; its
	// rows are printed as pending and no lab is built for it.
	pending string
}

func labVariants() []labVariant {
	vs := []labVariant{
		{key: "plain", name: "plain routing, client → backend IPs (b1, b2, b3 in turn; iperf3: b1), no NAT, no conntrack: the ceiling", tput: true, setup: setupPlain},
		{key: "conntrack", name: "plain routing with netfilter conntrack on (one nft forward rule, no NAT)", setup: setupConntrack},
		{key: "hotpath-direct", name: "hotpath pipeline (ct + lb plugins) on, client → backend IPs directly (no service): its cost without translation", tput: true, setup: setupHotpathDirect},
	}
	for _, n := range []int{1, 1000, 10000} {
		vs = append(vs, labVariant{key: fmt.Sprintf("iptables-%d", n), name: fmt.Sprintf("iptables DNAT (kube-proxy chains, iptables-nft), %s ahead", serviceCount(n)), ahead: n, tput: n == 1, setup: setupIptables})
	}
	for _, n := range []int{1, 1000, 10000} {
		vs = append(vs, labVariant{key: fmt.Sprintf("nft-%d", n), name: fmt.Sprintf("nftables DNAT (kube-proxy nftables: vmap + numgen random), %s ahead", serviceCount(n)), ahead: n, tput: n == 1, setup: setupNft})
	}
	for _, n := range []int{1, 1000, 10000} {
		v := labVariant{key: fmt.Sprintf("hotpath-%d", n), name: fmt.Sprintf("hotpath VIP (ct + lb plugins; measured VIPs maglev M=16381, fillers random), %s ahead", serviceCount(n)),
			ahead: n, tput: n == 1, setup: setupHotpath}
		if n == 1 {
			v.connTarget, v.tputTarget = RatioAbove(1.0).Because(whyConnRate), RatioAbove(0.95).Because(whyThroughput)
		}
		vs = append(vs, v)
	}
	return vs
}

// labComparisons are the goals between two variants other than plain
// routing: key's connection rate against base's.
var labComparisons = []struct {
	key, base, name string
	target          *Target
}{
	{"hotpath-1000", "iptables-1000", "hotpath VIP vs iptables DNAT, new connections/s, 1000 services ahead", RatioAbove(1.25).Because(whyVsIptables)},
	{"hotpath-10000", "hotpath-1", "hotpath VIP, new connections/s, 10000 vs 1 service ahead (flat: within 5%)", RatioAbove(0.95)},
}

func serviceCount(n int) string {
	if n == 1 {
		return "1 service"
	}
	return fmt.Sprintf("%d services", n)
}

func setupPlain(_ *Context, e *labEnv, _ int) error {
	e.connAddr = e.directAddrs()
	return nil
}

// setupConntrack turns netfilter conntrack on in the node without any NAT:
// the share of the DNAT variants' cost that is conntrack itself (a
// datapath with its own CT, like hotpath, does not pay it).
func setupConntrack(c *Context, e *labEnv, _ int) error {
	path, err := e.writeFile("conntrack.rules",
		"table ip bench {\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tct state established,related accept\n\t}\n}\n")
	if err != nil {
		return err
	}
	_, err = e.lab.Node.Exec("nft", "-f", path)
	e.connAddr = e.directAddrs()
	return err
}

func setupIptables(c *Context, e *labEnv, ahead int) error {
	svcs := servicesAhead(ahead,
		service{vip: connVIP, backends: e.backendPorts(rrPort)},
		service{vip: tputVIP, backends: e.backendPorts(iperfPort)[:1]})
	path, err := e.writeFile("iptables.rules", iptablesRules(svcs))
	if err != nil {
		return err
	}
	_, err = e.lab.Node.Exec("iptables-restore", path)
	e.connAddr, e.tputAddr = connVIP.String(), tputVIP.String()
	return err
}

func setupNft(c *Context, e *labEnv, ahead int) error {
	svcs := servicesAhead(ahead,
		service{vip: connVIP, backends: e.backendPorts(rrPort)},
		service{vip: tputVIP, backends: e.backendPorts(iperfPort)[:1]})
	path, err := e.writeFile("nftables.rules", nftRules(svcs))
	if err != nil {
		return err
	}
	_, err = e.lab.Node.Exec("nft", "-f", path)
	e.connAddr, e.tputAddr = connVIP.String(), tputVIP.String()
	return err
}
