package demo

import (
	"context"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/supervisor"
)

// onePass sends a burst pod -> pod and pod -> VIP -> pod and shows, with
// `hotpath datapath show` around it, that the forward stage sent the
// packets straight into the destination pod at the ingress hook where they
// entered the node: no pipeline ran again at the pod's egress hook.
func (d *Demo) onePass(ctx context.Context) error {
	d.step("One pass per node: direct redirects into pods")
	const n = 50
	web1 := d.lab.Pods["web1"].IP.String() + ":8081"
	if _, err := d.cli(true, "datapath", "show"); err != nil {
		return err
	}
	before, err := d.passes()
	if err != nil {
		return err
	}
	d.say("  ... %d connections client -> %s and %d client -> %s ...", n, web1, n, demoVIP)
	for _, addr := range []string{web1, demoVIP} {
		for i := 0; i < n; i++ {
			if _, err := d.lab.Pods["client"].AskName(ctx, "tcp", addr); err != nil {
				return fmt.Errorf("connection %d to %s: %w", i, addr, err)
			}
		}
	}
	after, err := d.passes()
	if err != nil {
		return err
	}
	if _, err := d.cli(true, "datapath", "show"); err != nil {
		return err
	}
	peer := after.st.Forward["peer"] - before.st.Forward["peer"]
	ingress, egress := after.ingress-before.ingress, after.egress-before.egress
	d.say("  %d packets went straight into a pod (bpf_redirect_peer); pipelines run: %d at ingress, %d at egress; next hops remembered: %d",
		peer, ingress, egress, after.st.NextHops)
	if !after.st.DirectRedirect || peer == 0 {
		return fmt.Errorf("direct redirects %v, %d packets redirected into pods: want on and some", after.st.DirectRedirect, peer)
	}
	d.fact("%d connections pod -> pod and pod -> VIP: %d packets redirected straight into the pod at ingress, %d pipelines ran at egress for them",
		2*n, peer, egress)
	return nil
}

// passState is `datapath show` with the pipelines counted at each hook.
type passState struct {
	st              supervisor.DatapathStatus
	ingress, egress uint64
}

func (d *Demo) passes() (passState, error) {
	var p passState
	if err := d.node.JSON(&p.st, "datapath", "show"); err != nil {
		return p, err
	}
	m, err := ebpf.LoadPinnedMap(pin.Layout{Root: d.lab.BPFFS}.Map(abi.MapMetrics), nil)
	if err != nil {
		return p, fmt.Errorf("open metrics map: %w", err)
	}
	defer m.Close()
	c, err := supervisor.DatapathCounters(m)
	if err != nil {
		return p, err
	}
	for _, both := range c {
		p.ingress += both[0].Packets
		p.egress += both[1].Packets
	}
	return p, nil
}
