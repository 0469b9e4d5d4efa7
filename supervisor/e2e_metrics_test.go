package supervisor_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/supervisor"
)

// scrape fetches /metrics from inside the node namespace.
func scrape(t *testing.T, env *e2e.Env, addr string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			return env.Lab.Node.Dial(ctx, network, a)
		},
	}}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func metricValue(t *testing.T, body, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` ([0-9.e+]+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("series %s not exported", series)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func TestPrivilegedMetrics(t *testing.T) {
	env := e2e.New(t, "a", "b")
	addr := "127.0.0.1:9402"
	env.Extra = []string{"--metrics-addr", addr}
	env.StartSupervisor(env.PluginFlag("ct"))
	if fi, err := os.Stat(supervisor.SocketPath(env.StateDir)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("control socket mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	b := env.Lab.Pods["b"]
	if _, err := lab.EchoServer(b.NS, b.IP.String()+":8080"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 5; i++ {
		if err := env.Lab.Pods["a"].Echo(ctx, "tcp", b.IP.String()+":8080", []byte("hello")); err != nil {
			t.Fatal(err)
		}
	}
	body := scrape(t, env, addr)
	if v := metricValue(t, body, `hotpath_datapath_packets_total{direction="ingress",reason="forward"}`); v < 20 {
		t.Errorf("forwarded ingress packets %v, want >= 20", v)
	}
	if v := metricValue(t, body, `hotpath_map_entries{map="ct4"}`); v < 5 {
		t.Errorf("ct4 entries %v, want >= 5 (5 connections, one OUT entry each)", v)
	}
	// Pod to pod on one node: redirected into the pod by the forward stage.
	if v := metricValue(t, body, `hotpath_datapath_forward_total{result="peer"}`); v < 20 {
		t.Errorf("packets redirected into a pod %v, want >= 20", v)
	}
	metricValue(t, body, `hotpath_map_max_entries{map="ct4"}`)
	metricValue(t, body, `hotpath_pipeline_generation`)
	// The ct plugin's own client_golang counter and histogram, merged
	// into the supervisor's registry under hotpath_ct_, with their types.
	if v := metricValue(t, body, `hotpath_ct_gc_runs_total`); v < 1 {
		t.Errorf("ct gc runs %v, want >= 1 (a pass runs at activation)", v)
	}
	if v := metricValue(t, body, `hotpath_ct_gc_duration_seconds_count`); v < 1 {
		t.Errorf("ct gc duration histogram count %v, want >= 1", v)
	}
	metricValue(t, body, `hotpath_ct_gc_duration_seconds_bucket{le="+Inf"}`)
	for _, typ := range []string{"hotpath_ct_gc_runs_total counter", "hotpath_ct_gc_duration_seconds histogram", "hotpath_ct_gc_interval_seconds gauge"} {
		if !strings.Contains(body, "\n# TYPE "+typ+"\n") {
			t.Errorf("no # TYPE %s in /metrics", typ)
		}
	}
	if v := metricValue(t, body, `hotpath_plugin_restarts_total{plugin="ct"}`); v != 0 {
		t.Errorf("restarts %v before any crash", v)
	}

	// Any plugin command goes through `plugin invoke`, no CLI knowledge needed.
	var stats struct {
		Runs   uint64 `json:"runs"`
		Method string `json:"method"`
	}
	out, err := env.CLI("plugin", "invoke", "ct", "stats")
	if err != nil || json.Unmarshal(out, &stats) != nil || stats.Method != "sweep" || stats.Runs == 0 {
		t.Errorf("plugin invoke ct stats: %s %v", out, err)
	}
	if _, err := env.CLI("plugin", "invoke", "ct", "stats", "{not json"); err == nil {
		t.Error("invalid JSON arguments accepted")
	}
	pid := env.PluginStatus("ct").Pid
	syscall.Kill(pid, syscall.SIGKILL)
	waitFor(t, "restart counted", 5*time.Second, func() bool {
		p := env.PluginStatus("ct")
		return p.Pid != pid && p.Healthy
	})
	body = scrape(t, env, addr)
	if v := metricValue(t, body, `hotpath_plugin_restarts_total{plugin="ct"}`); v != 1 {
		t.Errorf("restarts %v after one crash", v)
	}
	if v := metricValue(t, body, `hotpath_plugin_healthy{plugin="ct"}`); v != 1 {
		t.Errorf("healthy %v after restart", v)
	}
}
