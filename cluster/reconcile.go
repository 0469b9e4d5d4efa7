package cluster

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"
)

// Programmer programs a node from a Desired, whatever its source (etcd,
// Kubernetes); it remembers only what policy-apply cannot list back (the
// documents it applied).
type Programmer struct {
	cfg     Config
	dp      Datapath
	applied map[string]string
	changes int
}

// NewProgrammer programs the node behind dp; cfg names the node and the
// plugins (defaults filled in).
func NewProgrammer(cfg Config, dp Datapath) *Programmer {
	cfg.Defaults()
	return &Programmer{cfg: cfg, dp: dp, applied: map[string]string{}}
}

// Changes counts the datapath commands sent so far.
func (r *Programmer) Changes() int { return r.changes }

// Run converges the node on d and returns what it had to skip.
func (r *Programmer) Run(ctx context.Context, d *Desired) []string {
	var skipped []string
	for key, why := range d.Bad {
		skipped = append(skipped, fmt.Sprintf("key %s refused: %s", key, why))
	}
	step := func(plugin, what string, n int, f func(*caller) error) {
		c := &caller{dp: r.dp, plugin: plugin}
		if !c.loaded() {
			if n > 0 {
				skipped = append(skipped, fmt.Sprintf("no %s plugin loaded: %d %s not programmed", plugin, n, what))
			}
			return
		}
		if err := f(c); err != nil {
			skipped = append(skipped, fmt.Sprintf("%s: %v", what, err))
		}
		r.changes += c.changes
	}
	step(r.cfg.LBPlugin, "services", len(d.Services), func(c *caller) error { return syncServices(ctx, c, d.Services) })
	step(r.cfg.PolicyPlugin, "endpoints", len(d.Endpoints), func(c *caller) error { return syncEndpoints(ctx, c, d.Endpoints) })
	step(r.cfg.PolicyPlugin, "policies", len(d.Policies), func(c *caller) error { return syncPolicies(ctx, c, d.Policies, r.applied) })
	routes := Routes(d.Nodes, r.cfg.NodeName)
	step(r.cfg.TunnelPlugin, "tunnel routes", len(routes), func(c *caller) error { return syncRoutes(ctx, c, routes) })
	sort.Strings(skipped)
	return skipped
}

// record publishes a reconcile's outcome.
func (r *Programmer) record(box *statusBox, d *Desired, rev int64, skipped []string) {
	nodes := make([]string, 0, len(d.Nodes))
	for n := range d.Nodes {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	box.update(func(st *Status) {
		st.State, st.Reason, st.Revision, st.LastSync = StateHealthy, "", rev, time.Now()
		st.Services, st.Endpoints, st.Policies = len(d.Services), len(d.Endpoints), len(d.Policies)
		st.Nodes, st.Routes, st.Changes, st.Skipped = nodes, len(Routes(d.Nodes, r.cfg.NodeName)), r.changes, skipped
	})
}
