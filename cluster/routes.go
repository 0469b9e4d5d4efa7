package cluster

import (
	"context"
	"errors"
	"net/netip"

	"github.com/hotpath/hotpath/core/tunnels"
)

// Routes derives the tunnel routes node self needs: every other registered
// node's pod CIDR through its underlay IP. Nodes without both are skipped.
func Routes(nodes map[string]Node, self string) map[string]tunnels.Route {
	out := map[string]tunnels.Route{}
	for name, n := range nodes {
		if name == self || n.IP == "" || n.PodCIDR == "" {
			continue
		}
		r := tunnels.Route{CIDR: n.PodCIDR, Remote: n.IP}
		p, _, err := r.Parse()
		if err != nil {
			continue
		}
		out[p.String()] = r
	}
	return out
}

// syncRoutes makes the tunnel plugin's routes the derived ones.
func syncRoutes(ctx context.Context, c *caller, want map[string]tunnels.Route) error {
	var have []tunnels.Route
	if err := c.call(ctx, tunnels.CmdList, nil, &have); err != nil {
		return err
	}
	var errs []error
	seen := map[string]bool{}
	for _, h := range have {
		key := h.CIDR
		if p, err := netip.ParsePrefix(h.CIDR); err == nil {
			key = p.Masked().String()
		}
		seen[key] = true
		w, ok := want[key]
		if ok && w.Remote == h.Remote && w.VNI == h.VNI {
			continue
		}
		errs = append(errs, c.change(ctx, tunnels.CmdDel, tunnels.DelArgs{CIDR: h.CIDR}))
		if ok {
			errs = append(errs, c.change(ctx, tunnels.CmdAdd, w))
		}
	}
	for cidr, w := range want {
		if !seen[cidr] {
			errs = append(errs, c.change(ctx, tunnels.CmdAdd, w))
		}
	}
	return errors.Join(errs...)
}
