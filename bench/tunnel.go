package bench

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/hotpath/hotpath/internal/node"
	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/supervisor"
)

// The tunnel rows: cross-node TCP throughput and new connections/s from a
// pod on node A to a pod on node B of a two-node lab (lab.NewMulti), over
// hotpath's tunnel plugin against the kernel's own VXLAN with static
// routes and no BPF at all, each in a lab of its own, samples interleaved.

// tunnelEnv is one two-node lab with its servers on node B.
type tunnelEnv struct {
	m        *lab.Multi
	ev       *labEnv // node A's view: the client pod, for connRate and iperf
	sups     []*node.Node
	closed   bool
	untrack  func()
	conn     string
	tput     string
	variant  tunnelVariant
	connS    []float64
	tputS    []float64
	errs     int64
	firstErr string
}

type tunnelVariant struct {
	key, name string
	plugins   []string // hotpath variants: the plugins besides tunnel
	target    bool     // held to >= 0.95x the kernel's rates
	setup     func(c *Context, e *tunnelEnv) error
}

func tunnelVariants() []tunnelVariant {
	return []tunnelVariant{
		{key: "kernel", name: "kernel VXLAN (unicast remote, id 1, port 8472) with static routes to the peer's pod CIDR, no BPF", setup: setupKernelVXLAN},
		{key: "hotpath", name: "hotpath tunnel plugin alone (collect_md VXLAN device of the supervisor)", target: true, setup: setupHotpathTunnel},
		{key: "hotpath-full", name: "hotpath tunnel with ct + lb plugins (conntrack on every hook, which the baseline does not do)", plugins: []string{"ct", "lb"}, setup: setupHotpathTunnel},
	}
}

func newTunnelEnv(c *Context, v tunnelVariant) (*tunnelEnv, error) {
	m, err := lab.NewMulti(lab.MultiOptions{Pods: [2][]string{{"client"}, {"server"}}, NoOffload: true, MountBPFFS: true})
	if err != nil {
		return nil, err
	}
	e := &tunnelEnv{m: m, variant: v}
	e.untrack = track(func() { e.close() })
	client, server := m.Nodes[0].Pods["client"], m.Nodes[1].Pods["server"]
	e.ev = &labEnv{lab: m.Nodes[0], client: client}
	for key, val := range map[string]string{"net/ipv4/ip_local_port_range": "1024 65535", "net/ipv4/tcp_tw_reuse": "1"} {
		if err := sysctl(client.NS, key, val); err != nil {
			e.close()
			return nil, err
		}
	}
	if _, err := m.Nodes[1].Start(server.NS, "", c.Self, helperServe, fmt.Sprintf(":%d", rrPort)); err != nil {
		e.close()
		return nil, err
	}
	if _, err := m.Nodes[1].Start(server.NS, "", "iperf3", "-s", "-p", strconv.Itoa(iperfPort)); err != nil {
		e.close()
		return nil, err
	}
	for _, port := range []int{rrPort, iperfPort} {
		if err := waitListen(server.NS, port); err != nil {
			e.close()
			return nil, err
		}
	}
	e.conn = netip.AddrPortFrom(server.IP, rrPort).String()
	e.tput = netip.AddrPortFrom(server.IP, iperfPort).String()
	return e, nil
}

func (e *tunnelEnv) close() {
	if e.closed {
		return
	}
	e.closed = true
	for _, s := range e.sups {
		s.Stop()
	}
	e.untrack()
	e.m.Close()
}

// setupKernelVXLAN gives each node a plain VXLAN device towards the other
// node, an address on it and a route to the other node's pods through it.
func setupKernelVXLAN(_ *Context, e *tunnelEnv) error {
	for i, n := range e.m.Nodes {
		peer := 1 - i
		gw := fmt.Sprintf("172.31.255.%d", peer+1)
		_, err := n.Node.Exec("sh", "-c", fmt.Sprintf(
			"ip link add kvxlan type vxlan id 1 dstport 8472 local %s remote %s dev %s && ip link set kvxlan mtu %d up && "+
				"ip addr add 172.31.255.%d/24 dev kvxlan && ip route add %s via %s dev kvxlan",
			e.m.Underlay[i], e.m.Underlay[peer], lab.UnderlayDevice, lab.OverlayMTU, i+1, e.m.Nodes[peer].PodCIDR(), gw))
		if err != nil {
			return fmt.Errorf("kernel vxlan on node %d: %w", i, err)
		}
	}
	return nil
}

// setupHotpathTunnel runs a supervisor with ct, lb and tunnel on each node
// and adds the route to the other node's pods.
func setupHotpathTunnel(c *Context, e *tunnelEnv) error {
	for _, n := range e.m.Nodes {
		h := node.New(n, c.Bin)
		e.sups = append(e.sups, h)
		raw, err := json.Marshal(map[string]any{"pod_cidrs": []string{n.PodCIDR().String()}})
		if err != nil {
			return err
		}
		cfg := supervisor.Config{BPFFS: n.BPFFS, StateDir: h.StateDir, Devices: h.Devices(),
			Tunnel: &supervisor.TunnelConfig{UnderlayDevice: lab.UnderlayDevice}}
		for _, p := range e.variant.plugins {
			cfg.Plugins = append(cfg.Plugins, supervisor.PluginConfig{Name: p, Path: c.Bin + "/hotpath-" + p})
		}
		cfg.Plugins = append(cfg.Plugins, supervisor.PluginConfig{Name: "tunnel", Path: c.Bin + "/hotpath-tunnel", Config: raw})
		b, err := json.Marshal(cfg)
		if err != nil {
			return err
		}
		path, err := (&labEnv{lab: n}).writeFile("hotpath.json", string(b))
		if err != nil {
			return err
		}
		if err := h.Start("--config", path); err != nil {
			return err
		}
	}
	for i, h := range e.sups {
		peer := 1 - i
		if out, err := h.CLI("tunnel", "add", e.m.Nodes[peer].PodCIDR().String(), "--remote", e.m.Underlay[peer].String()); err != nil {
			return fmt.Errorf("tunnel add on node %d: %w: %s", i, err, out)
		}
	}
	return nil
}

func tunnelSuite(c *Context) (rows []Row, err error) {
	if err := EnsureTools(c); err != nil {
		return nil, err
	}
	var live []*tunnelEnv
	defer func() {
		for _, e := range live {
			e.close()
		}
	}()
	for _, v := range tunnelVariants() {
		e, err := newTunnelEnv(c, v)
		if err != nil {
			return nil, fmt.Errorf("lab for %s: %w", v.name, err)
		}
		live = append(live, e)
		if err := v.setup(c, e); err != nil {
			return nil, fmt.Errorf("set up %s: %w", v.name, err)
		}
		if _, err := e.ev.connRate(c, e.conn, time.Second, connWorkers); err != nil {
			return nil, fmt.Errorf("warm-up %s: %w", v.name, err)
		}
	}
	time.Sleep(2 * time.Second)
	for i := range c.LabRuns {
		for j := range live {
			e := live[(i+j)%len(live)]
			res, err := e.ev.connRate(c, e.conn, connDur, connWorkers)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", e.variant.name, err)
			}
			rate := float64(res.Conns) / res.Seconds
			e.connS = append(e.connS, rate)
			e.errs += res.Errors
			if e.firstErr == "" {
				e.firstErr = res.FirstErr
			}
			bps, err := e.ev.iperf(e.tput, iperfSecs, 1)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", e.variant.name, err)
			}
			e.tputS = append(e.tputS, bps)
			c.Logf("tunnel run %d/%d %s: %.0f conn/s, %.2f Gbit/s", i+1, c.LabRuns, e.variant.key, rate, bps/1e9)
		}
	}
	base := live[0]
	connP := connParams() + ", pod on node A → pod on node B"
	tputP := fmt.Sprintf("iperf3 -P 1, %d s, pod on node A → pod on node B", iperfSecs)
	for _, e := range live {
		conn := Row{Name: "cross-node new connections/s, " + e.variant.name + ", " + connP, Unit: UnitConns, Samples: e.connS}
		tput := Row{Name: "cross-node TCP throughput, " + e.variant.name + ", " + tputP, Unit: UnitBits, Samples: e.tputS}
		if e.errs > 0 {
			conn.Note = fmt.Sprintf("%d failed connections over all runs (first: %s)", e.errs, e.firstErr)
		}
		if e != base {
			conn.BaseName, conn.Base = base.variant.name, base.connS
			tput.BaseName, tput.Base = base.variant.name, base.tputS
		}
		if e.variant.target {
			conn.Target, tput.Target = RatioAbove(0.95), RatioAbove(0.95)
		}
		rows = append(rows, conn, tput)
	}
	return rows, nil
}
