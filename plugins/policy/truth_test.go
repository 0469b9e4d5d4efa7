package policy

import (
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/hotpath/hotpath/core/netpol"
)

// TestPrivilegedTruthTable: for every policy set, every ordered pair of the
// 6 pods on TCP 80, TCP 81 and UDP 53 is measured with real sockets through
// the ct and policy stages, and must match what the test's own evaluator of
// NetworkPolicy semantics expects. No policies first: everything passes.
func TestPrivilegedTruthTable(t *testing.T) {
	c := newCluster(t)
	ps := c.probes()
	cases := append([]struct{ name, yaml string }{{"no-policy", ""}}, truthCases...)
	if len(truthCases) < 15 {
		t.Fatalf("%d policy sets, want at least 15", len(truthCases))
	}
	for _, tc := range cases {
		c.setPolicies(t, tc.yaml)
		var nps []networkingv1.NetworkPolicy
		if tc.yaml != "" {
			var err error
			if nps, err = netpol.Parse([]byte(tc.yaml)); err != nil {
				t.Fatal(err)
			}
		}
		got := c.measure(ps, 800*time.Millisecond)
		allowed, denied := 0, 0
		for i, p := range ps {
			want := expect(nps, p)
			if want {
				allowed++
			} else {
				denied++
			}
			if got[i] != want {
				t.Errorf("%s: %s: passed=%v, want %v", tc.name, p, got[i], want)
			}
		}
		if tc.yaml != "" && denied == 0 && tc.name != "allow-all-ingress-over-deny" {
			t.Errorf("%s: the evaluator expects nothing denied: the case does not exercise enforcement", tc.name)
		}
		t.Logf("%s: %d probes, %d expected allowed, %d denied", tc.name, len(ps), allowed, denied)
	}
}
