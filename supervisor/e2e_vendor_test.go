package supervisor_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/supervisor"
)

// TestPrivilegedVendorSelectionPlugin: a separate plugin supplies backend
// selection in the lb-select slot, with no core change: lb hands the slot
// over, and every new flow follows the vendor's algorithm (always the first
// backend) instead of Maglev.
func TestPrivilegedVendorSelectionPlugin(t *testing.T) {
	env := e2e.New(t, "client", "web1", "web2", "web3")
	// lb's config hands the slot over; nothing comes from the environment.
	env.WriteConfig(supervisor.Config{Plugins: []supervisor.PluginConfig{
		{Name: "ct", Path: env.Bin + "/hotpath-ct"},
		{Name: "lb", Path: env.Bin + "/hotpath-lb", Config: json.RawMessage(`{"select": "external"}`)},
		{Name: "first", Path: env.Bin + "/hotpath-first"},
	}})
	env.StartSupervisor()
	for _, w := range webs {
		p := env.Lab.Pods[w]
		if _, err := lab.ServeName(p.NS, p.IP.String()+":8080", w); err != nil {
			t.Fatal(err)
		}
	}
	slots := map[string]string{}
	for _, p := range env.Plugins() {
		slots[p.Name] = strings.Join(p.Slots, ",")
	}
	if slots["first"] != "lb-select" || strings.Contains(slots["lb"], "lb-select") {
		t.Fatalf("slot claims %v: want lb-select with the vendor plugin only", slots)
	}
	// Status shows the hooks each claimed, from its Describe.
	if lbp, fp := env.PluginStatus("lb"), env.PluginStatus("first"); lbp.Hooks["lb-select"] != nil ||
		strings.Join(fp.Hooks["lb-select"], ",") != "ingress" || strings.Join(lbp.Hooks["lb-revnat"], ",") != "ingress,egress" {
		t.Fatalf("hooks in status: lb %v, first %v", lbp.Hooks, fp.Hooks)
	}
	table, err := env.CLI("plugin", "list")
	if err != nil || !strings.Contains(string(table), "lb-select(ingress)") || !strings.Contains(string(table), "lb-revnat(ingress+egress)") {
		t.Fatalf("plugin list does not show the claimed hooks: %s %v", table, err)
	}
	const vip = "10.96.0.70:80"
	addService(t, env, vip, "maglev")
	counts := shares(t, env, vip, 200)
	if len(counts) != 1 {
		t.Fatalf("vendor selection spread flows over %v; it always picks the first backend", counts)
	}
	// (TestPrivilegedLBWeightedShares shows lb's own Maglev spreading the
	// same service evenly.)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := ask(ctx, env, vip, 0); err != nil {
		t.Fatal(err)
	}
}
