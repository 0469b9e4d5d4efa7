package bench

import (
	"fmt"
	"net/netip"
	"time"
)

const (
	connDur     = 3 * time.Second // one connection-rate sample
	connWorkers = 4               // parallel connect loops in the client
	iperfSecs   = 3               // measured seconds per iperf3 sample (+1 omitted)
)

// connParams describes one connection-rate sample, for row names.
func connParams() string {
	return fmt.Sprintf("%s × %d workers (connect, write 1 B, read 1 B, close; raw system calls, a thread each)", connDur, connWorkers)
}

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
	// connTarget and tputTarget are goals relative to plain routing; a
	// miss is explained from the run's rows (labWhy).
	connTarget, tputTarget *Target
	// opts are hotpath options beyond the default pipeline (labfast.go).
	opts hotpathOptions
	// bpfBase is the variant the BPF time per packet is set against
	// (default: the pipeline without a service).
	bpfBase string
}

func labVariants() []labVariant {
	vs := []labVariant{
		{key: "plain", name: "plain routing, client → backend IPs (b1, b2, b3 in turn; iperf3: b1), no NAT, no conntrack: the ceiling", tput: true, setup: setupPlain},
		// The same path again in a lab of its own: the run's A/A pair.
		// How far two identical labs come apart is the least a ratio
		// between any two variants of this run can resolve (aaBand).
		{key: "plain-again", name: "plain routing again, in a second lab of its own (A/A: the same path as plain routing, measured beside it)", tput: true, setup: setupPlain},
		{key: "nohop", name: "no node at all: the client veth'd straight to each backend (the endpoints' own work, which no node datapath removes)", tput: true, setup: setupNoHop},
		{key: "bare", name: "bare TCX forwarder (internal/bare): one lookup, the MACs and bpf_redirect_peer per packet, no conntrack, no translation: what the hook and the redirect give any eBPF datapath", tput: true, setup: setupBare},
		{key: "conntrack", name: "plain routing with netfilter conntrack on (one nft forward rule, no NAT)", setup: setupConntrack},
		{key: "hotpath-direct", name: "hotpath pipeline (ct + lb plugins) on, client → backend IPs directly (no service): its cost without translation", tput: true, setup: setupHotpathDirect},
	}
	for _, n := range labCounts {
		vs = append(vs, labVariant{key: fmt.Sprintf("iptables-%d", n), name: fmt.Sprintf("iptables DNAT (kube-proxy chains, iptables-nft), %s ahead", serviceCount(n)), ahead: n, tput: n == 1, setup: setupIptables})
		vs = append(vs, labVariant{key: fmt.Sprintf("nft-%d", n), name: fmt.Sprintf("nftables DNAT (kube-proxy nftables: vmap + numgen random), %s ahead", serviceCount(n)), ahead: n, tput: n == 1, setup: setupNft})
	}
	for _, n := range labCounts {
		v := labVariant{key: fmt.Sprintf("hotpath-%d", n), name: fmt.Sprintf("hotpath VIP (ct + lb plugins; measured VIPs maglev M=16381, fillers random; socket LB off), %s ahead", serviceCount(n)),
			ahead: n, tput: n == 1, setup: setupHotpath}
		if n == 1 {
			v.connTarget, v.tputTarget = RatioAbove(1.0), RatioAbove(1.0)
		}
		vs = append(vs, v)
	}
	vs = append(vs, labVariant{key: "hotpath-maglev-1000", name: "hotpath VIP (ct + lb plugins), 1000 Maglev services (M=16381, 3 backends) ahead",
		ahead: 1000, setup: setupHotpathMaglev})
	// The faster paths, each against plain routing in the same run.
	// Socket LB has the targets; redirects off shows what the
	// direct redirects of the default variant are worth, and CT accounting
	// off what the per-packet counters cost, without a target.
	for _, o := range []hotpathOptions{{socketLB: true}, {noRedirect: true}, {noAccounting: true}} {
		v := labVariant{key: "hotpath-" + o.key() + "-1", name: "hotpath VIP (ct + lb plugins; " + o.text() + "), 1 service ahead",
			ahead: 1, tput: true, setup: setupHotpath, opts: o}
		if o.socketLB {
			v.connTarget, v.tputTarget = RatioAbove(1.10), RatioAbove(1.0)
		}
		if o.noAccounting {
			v.bpfBase = "hotpath-1"
		}
		vs = append(vs, v)
	}
	return vs
}

// labCounts are the service counts of the DNAT variants: iptables, nftables
// and hotpath each at every one.
var labCounts = []int{1, 1000, 10000}

// labComparison is a goal between two variants other than plain routing:
// key's connection rate against base's.
type labComparison struct {
	key, base, name string
	target          *Target
	// flat: the comparison is hotpath against itself with fewer services.
	flat bool
}

// labComparisons are hotpath against iptables and against nftables at every
// service count, and hotpath with many services against one.
func labComparisons() []labComparison {
	var out []labComparison
	for _, n := range labCounts {
		ipt := labComparison{key: fmt.Sprintf("hotpath-%d", n), base: fmt.Sprintf("iptables-%d", n),
			name: fmt.Sprintf("hotpath VIP vs iptables DNAT, new connections/s, %s ahead", serviceCount(n))}
		nft := labComparison{key: ipt.key, base: fmt.Sprintf("nft-%d", n),
			name: fmt.Sprintf("hotpath VIP vs nftables DNAT, new connections/s, %s ahead", serviceCount(n))}
		if n == 1000 {
			ipt.target, nft.target = RatioAbove(1.3), RatioAbove(1.1)
		}
		out = append(out, ipt, nft)
	}
	for _, f := range []struct{ key, what string }{
		{"hotpath-1000", "1000 services"}, {"hotpath-10000", "10000 services"}, {"hotpath-maglev-1000", "1000 Maglev services"},
	} {
		out = append(out, labComparison{key: f.key, base: "hotpath-1", flat: true, target: RatioAbove(0.95),
			name: fmt.Sprintf("hotpath VIP, new connections/s, %s vs 1 service ahead (flat: within 5%%)", f.what)})
	}
	return out
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
