package bench

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/supervisor"
)

// The masquerade rows: new connections/s from a pod to a server in the
// lab's external namespace (no route back to the pods), through the node's
// uplink with source NAT. hotpath's nat plugin against iptables MASQUERADE,
// each in a lab of its own, samples interleaved as in the lab suite.

const masqServerPort = 8080

// masqVariant is one way of masquerading the client.
type masqVariant struct {
	key, name string
	setup     func(c *Context, e *labEnv) error
}

func masqVariants() []masqVariant {
	return []masqVariant{
		{"iptables", "iptables MASQUERADE (netfilter conntrack + nat, iptables-nft), one POSTROUTING rule", setupMasqIptables},
		{"hotpath", "hotpath masquerade (ct + nat plugins; port_range 1024-65535, ct close lifetime 2s)", setupMasqHotpath},
	}
}

// newMasqEnv is a lab with the client pod and the external namespace, the
// connection-rate server running there.
func newMasqEnv(c *Context) (*labEnv, error) {
	l, err := lab.New(lab.Options{Pods: []string{"client"}, NoOffload: true, MountBPFFS: true, External: true})
	if err != nil {
		return nil, err
	}
	e := &labEnv{lab: l, client: l.Pods["client"]}
	e.untrack = track(func() { e.close() })
	if err := e.startMasq(c); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *labEnv) startMasq(c *Context) error {
	for key, val := range map[string]string{
		"net/ipv4/ip_local_port_range": "1024 65535",
		"net/ipv4/tcp_tw_reuse":        "1",
	} {
		if err := sysctl(e.client.NS, key, val); err != nil {
			return err
		}
	}
	if _, err := e.lab.Start(e.lab.External, "", c.Self, helperServe, fmt.Sprintf(":%d", masqServerPort)); err != nil {
		return err
	}
	if err := waitListen(e.lab.External, masqServerPort); err != nil {
		return err
	}
	e.connAddr = fmt.Sprintf("%s:%d", lab.ExternalIP, masqServerPort)
	return nil
}

func setupMasqIptables(c *Context, e *labEnv) error {
	_, err := e.lab.Node.Exec("iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "10.240.0.0/16", "-o", lab.UplinkDevice, "-j", "MASQUERADE")
	return err
}

// setupMasqHotpath runs the supervisor with ct and nat on the client's
// device and the uplink. The port range is Linux's (MASQUERADE keeps a
// source port >= 1024 within 1024-65535) and the close lifetime is short:
// the client opens ~10k connections/s and a flow's port is only free again
// one close lifetime after its last FIN (Linux instead re-opens a closed
// conntrack entry when the client reuses its port).
func setupMasqHotpath(c *Context, e *labEnv) error {
	natCfg, err := json.Marshal(map[string]any{
		"masquerade_device": lab.UplinkDevice, "cluster_cidrs": []string{"10.240.0.0/16"}, "port_range": "1024-65535",
	})
	if err != nil {
		return err
	}
	e.extraDevices = []string{lab.UplinkDevice}
	h, err := startSupervisor(c, e, []supervisor.PluginConfig{
		{Name: "ct", Config: json.RawMessage(`{"lifetimes": {"close": "2s"}}`)},
		{Name: "nat", Config: natCfg},
	})
	if err != nil {
		return err
	}
	e.onClose(h.stop)
	return nil
}

func masqSuite(c *Context) (rows []Row, err error) {
	if err := EnsureTools(c); err != nil {
		return nil, err
	}
	type run struct {
		v     masqVariant
		e     *labEnv
		conn  []float64
		errs  int64
		first string
	}
	var live []*run
	defer func() {
		for _, r := range live {
			if cerr := r.e.close(); cerr != nil {
				c.Logf("close lab of %q: %v", r.v.name, cerr)
			}
		}
	}()
	for _, v := range masqVariants() {
		e, err := newMasqEnv(c)
		if err != nil {
			return nil, fmt.Errorf("lab for %s: %w", v.name, err)
		}
		r := &run{v: v, e: e}
		live = append(live, r)
		if err := v.setup(c, e); err != nil {
			return nil, fmt.Errorf("set up %s: %w", v.name, err)
		}
		if _, err := e.connRate(c, e.connAddr, time.Second, connWorkers); err != nil {
			return nil, fmt.Errorf("warm-up %s: %w", v.name, err)
		}
	}
	time.Sleep(2 * time.Second)
	for i := range c.LabRuns {
		for j := range live {
			r := live[(i+j)%len(live)]
			res, err := r.e.connRate(c, r.e.connAddr, connDur, connWorkers)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", r.v.name, err)
			}
			rate := float64(res.Conns) / res.Seconds
			r.conn = append(r.conn, rate)
			r.errs += res.Errors
			if r.first == "" {
				r.first = res.FirstErr
			}
			c.Logf("masquerade run %d/%d %s: %.0f conn/s (%d errors)", i+1, c.LabRuns, r.v.name, rate, res.Errors)
		}
	}
	connP := connParams() + ", pod → external server through the uplink"
	base := live[0]
	for _, r := range live {
		row := Row{Name: "new connections/s, " + r.v.name + ", " + connP, Unit: UnitConns, Samples: r.conn}
		if r.errs > 0 {
			row.Note = fmt.Sprintf("%d failed connections over all runs (first: %s)", r.errs, r.first)
		}
		if r != base {
			row.BaseName, row.Base, row.Target = base.v.name, base.conn, RatioAbove(1.0)
		}
		rows = append(rows, row)
	}
	return rows, nil
}
