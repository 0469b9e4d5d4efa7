package deploy

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/lab"
)

// exportedNames scrapes a real supervisor running every built-in plugin,
// after traffic and one plugin upgrade, and returns the metric family
// names of its /metrics (histogram and summary series folded into their
// family).
func exportedNames(t *testing.T) map[string]bool {
	env := e2e.New(t, "a", "b")
	addr := "127.0.0.1:9402"
	// Cluster mode towards an etcd that is not there (the node namespace's
	// own loopback): the source's metrics are exported from the start.
	env.Extra = []string{"--metrics-addr", addr, "--kvstore-endpoints", "http://127.0.0.1:2379", "--node-name", "n1"}
	env.StartSupervisor(env.PluginFlag("ct"), env.PluginFlag("lb"), env.PluginFlag("policy"))
	b := env.Lab.Pods["b"]
	if _, err := lab.EchoServer(b.NS, b.IP.String()+":8080"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := env.Lab.Pods["a"].NS.Echo(ctx, "tcp", b.IP.String()+":8080", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, err := env.CLI("plugin", "upgrade", "ct", "--binary", e2e.Variant(t, "hotpath-ct", "github.com/hotpath/hotpath/plugins/ct", "0.2.0-dash")); err != nil {
		t.Fatal(err)
	}
	// A deny-all ingress policy on b: the next connection attempt is a
	// counted drop, so the drop family is exported too.
	if _, err := env.CLI("endpoint", "add", b.IP.String(), "--namespace", "t", "--label", "app=b"); err != nil {
		t.Fatal(err)
	}
	deny := env.Lab.Dir + "/deny.yaml"
	if err := os.WriteFile(deny, []byte("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: t}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := env.CLI("policy", "apply", "-f", deny); err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), time.Second)
	if env.Lab.Pods["a"].NS.Echo(dctx, "tcp", b.IP.String()+":8080", []byte("hi")) == nil {
		t.Error("connection through a deny-all policy succeeded")
	}
	dcancel()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			return env.Lab.Node.Dial(ctx, network, a)
		},
	}}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (\S+) `).FindAllStringSubmatch(string(body), -1) {
		names[m[1]] = true
	}
	return names
}

// queryMetric finds metric names in a PromQL expression: identifiers that
// start with hotpath_, with histogram suffixes folded into their family.
var queryMetric = regexp.MustCompile(`hotpath_[a-zA-Z0-9_]+`)

func family(name string) string {
	for _, s := range []string{"_bucket", "_sum", "_count"} {
		if f, ok := strings.CutSuffix(name, s); ok {
			return f
		}
	}
	return name
}

type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// Every query of the Grafana dashboard names metrics a real supervisor
// exports, and names at least one.
func TestPrivilegedDashboardMetrics(t *testing.T) {
	raw, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	names := exportedNames(t)
	var all []string
	for n := range names {
		all = append(all, n)
	}
	sort.Strings(all)
	t.Logf("exported: %s", strings.Join(all, " "))
	queries := 0
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			queries++
			ms := queryMetric.FindAllString(q.Expr, -1)
			if len(ms) == 0 {
				t.Errorf("panel %q: query %q names no hotpath metric", p.Title, q.Expr)
			}
			for _, m := range ms {
				if !names[m] && !names[family(m)] {
					t.Errorf("panel %q: query %q names %s, which the supervisor does not export", p.Title, q.Expr, m)
				}
			}
		}
	}
	if queries == 0 {
		t.Error("dashboard has no queries")
	}
}
