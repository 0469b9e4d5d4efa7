package bench

import (
	"fmt"
	"strings"
	"time"

	"github.com/hotpath/hotpath/supervisor"
)

// policyRules is the size of the policy the suite applies.
const policyRules = 1000

// policySuite: the policy plugin's cost. One lab, the supervisor with the ct
// and policy plugins, the client and the three backends registered as
// endpoints. Each run measures the connection rate with no policy, then
// applies one NetworkPolicy of 1000 ingress rules selecting the backends
// (999 that allow other /32s on other ports, and one that allows the
// client: every SYN of the measured flows is checked against a selected
// endpoint's full table), measures again, and deletes it. The apply time is
// the wall time of `hotpath policy apply -f`, parse and CLI included.
func policySuite(c *Context) (rows []Row, err error) {
	if err := EnsureTools(c); err != nil {
		return nil, err
	}
	e, err := newLabEnv(c)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := e.close(); cerr != nil {
			c.Logf("close policy lab: %v", cerr)
		}
	}()
	h, err := startSupervisor(c, e, []supervisor.PluginConfig{{Name: "ct"}, {Name: "policy"}})
	if err != nil {
		return nil, err
	}
	e.onClose(h.stop)
	if _, err := h.cli("endpoint", "add", e.client.IP.String(), "--namespace", "bench", "--label", "role=client"); err != nil {
		return nil, err
	}
	for _, b := range e.backends {
		if _, err := h.cli("endpoint", "add", b.IP.String(), "--namespace", "bench", "--label", "app=rr"); err != nil {
			return nil, err
		}
	}
	path, err := e.writeFile("policy-1000.yaml", bigPolicy(policyRules))
	if err != nil {
		return nil, err
	}
	addrs := e.directAddrs()
	if _, err := e.connRate(c, addrs, time.Second, connWorkers); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	var none, with, apply []float64
	var errs int64
	for run := range c.LabRuns {
		res, err := e.connRate(c, addrs, connDur, connWorkers)
		if err != nil {
			return nil, err
		}
		none = append(none, float64(res.Conns)/res.Seconds)
		errs += res.Errors
		start := time.Now()
		if _, err := h.cli("policy", "apply", "-f", path); err != nil {
			return nil, err
		}
		apply = append(apply, time.Since(start).Seconds())
		res, err = e.connRate(c, addrs, connDur, connWorkers)
		if err != nil {
			return nil, err
		}
		with = append(with, float64(res.Conns)/res.Seconds)
		errs += res.Errors
		if _, err := h.cli("policy", "delete", "bench/big"); err != nil {
			return nil, err
		}
		c.Logf("policy run %d/%d: %.0f conn/s without, %.0f with %d rules, apply %.3fs", run+1, c.LabRuns, none[run], with[run], policyRules, apply[run])
	}
	connP := fmt.Sprintf("%s × %d workers to the backends directly (ct + policy plugins)", connDur, connWorkers)
	rows = []Row{
		{Name: fmt.Sprintf("policy apply, one NetworkPolicy of %d ingress rules (ipBlock /32 + port each), `hotpath policy apply -f` wall time", policyRules),
			Unit: UnitSeconds, Samples: apply, Target: Below(1.0), Tail: true},
		{Name: fmt.Sprintf("new connections/s with a %d-rule policy selecting the backends, %s", policyRules, connP),
			Unit: UnitConns, Samples: with, BaseName: "no policy", Base: none, Target: RatioAbove(0.95)},
	}
	if errs > 0 {
		rows[1].Note = fmt.Sprintf("%d failed connections over all runs", errs)
	}
	return rows, nil
}

// bigPolicy is one NetworkPolicy in namespace bench selecting app=rr with n
// ingress rules: n-1 allow a /32 of 10.200.0.0/16 on a port of their own,
// the last allows role=client on the connection-rate port.
func bigPolicy(n int) string {
	var b strings.Builder
	b.WriteString("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: big, namespace: bench}\nspec:\n  podSelector: {matchLabels: {app: rr}}\n  ingress:\n")
	for i := 0; i < n-1; i++ {
		fmt.Fprintf(&b, "  - from: [{ipBlock: {cidr: 10.200.%d.%d/32}}]\n    ports: [{port: %d}]\n", i/250, i%250+1, 10000+i)
	}
	fmt.Fprintf(&b, "  - from: [{podSelector: {matchLabels: {role: client}}}]\n    ports: [{port: %d}]\n", rrPort)
	return b.String()
}
