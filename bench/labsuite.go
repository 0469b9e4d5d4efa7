package bench

import (
	"errors"
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
	name  string // row text
	ahead int    // services configured ahead of the measured one
	tput  bool   // also measure iperf3 throughput (only where it can differ)
	// setup configures the node namespace and sets the env's addresses.
	setup func(c *Context, e *labEnv, ahead int) error
	// pending, if set, says what the variant needs before it can run; its
	// rows are printed as pending and no lab is built for it.
	pending string
}

func labVariants() []labVariant {
	vs := []labVariant{
		{name: "plain routing, client → backend IP (no NAT, no conntrack): the ceiling", tput: true, setup: setupPlain},
		{name: "plain routing with netfilter conntrack on (one nft forward rule, no NAT)", setup: setupConntrack},
	}
	for _, n := range []int{1, 1000, 10000} {
		vs = append(vs, labVariant{name: fmt.Sprintf("iptables DNAT (kube-proxy chains, iptables-nft), %s ahead", services(n)), ahead: n, tput: n == 1, setup: setupIptables})
	}
	for _, n := range []int{1, 1000, 10000} {
		vs = append(vs, labVariant{name: fmt.Sprintf("nftables DNAT (kube-proxy nftables: vmap + numgen random), %s ahead", services(n)), ahead: n, tput: n == 1, setup: setupNft})
	}
	for _, n := range []int{1, 1000, 10000} {
		vs = append(vs, labVariant{name: fmt.Sprintf("hotpath VIP (ct + lb plugins), %s ahead", services(n)), ahead: n, tput: n == 1, setup: setupHotpath,
			pending: "the lb plugin (hotpath-lb) and `hotpath lb service add`"})
	}
	return vs
}

func services(n int) string {
	if n == 1 {
		return "1 service"
	}
	return fmt.Sprintf("%d services", n)
}

func setupPlain(*Context, *labEnv, int) error { return nil }

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

// setupHotpath is the hook for the "hotpath VIP" rows. To fill it once the
// lb plugin lands (and drop the variants' pending field):
//
//	h, err := startSupervisor(c, e, []supervisor.PluginConfig{{Name: "ct"}, {Name: "lb"}})
//	e.onClose(h.stop)
//	for each of servicesAhead(ahead, conn, tput) (the baselines' services):
//		h.cli("lb", "service", "add", "VIP:PORT/tcp", "--backend", "IP:PORT", ...)
//	e.connAddr, e.tputAddr = connVIP.String(), tputVIP.String()
//
// with conn = connVIP → e.backendPorts(rrPort) and tput = tputVIP → the
// first of e.backendPorts(iperfPort). 10000 `service add` calls cost a
// process each; a batch command or the control API directly would be
// faster.
func setupHotpath(c *Context, e *labEnv, ahead int) error {
	_, _, _ = c, e, ahead
	return errors.New("hotpath VIP variant not implemented yet")
}
