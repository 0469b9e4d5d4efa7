// Command testplugin is a hotpath plugin whose behaviour is set by
// environment variables, for tests of the plugin host and of upgrades:
//
//	HOTPATH_TEST_NAME            plugin name (default "test")
//	HOTPATH_TEST_VERSION         plugin version (default "1.0.0")
//	HOTPATH_TEST_ABI             ABI version to claim (default abi.Version)
//	HOTPATH_TEST_EXIT_AT_START=1 exit with status 3 before the handshake
//	HOTPATH_TEST_UNHEALTHY_AFTER Health turns unhealthy this long after Activate
//	HOTPATH_TEST_LOAD_ERROR      Load fails with this message
//
// Its config may name slots to claim: {"slots": ["ct"]}.
//
// Invoke commands: "echo" returns its args, "pid" the plugin's pid, "log"
// logs its args (a JSON string) through plugin.Logger. Each is counted in
// the metrics invokes_total (a counter) and invoke_args_bytes (a histogram).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/plugin"
)

func main() {
	if os.Getenv("HOTPATH_TEST_EXIT_AT_START") == "1" {
		fmt.Fprintln(os.Stderr, "testplugin: exiting at start as asked")
		os.Exit(3)
	}
	tp, err := fromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testplugin:", err)
		os.Exit(2)
	}
	plugin.Serve(tp)
}

type testPlugin struct {
	plugin.Registry
	invokes        *prometheus.CounterVec
	argBytes       prometheus.Histogram
	desc           plugin.Description
	loadErr        string
	unhealthyAfter time.Duration

	mu        sync.Mutex
	activated time.Time
}

func fromEnv() (*testPlugin, error) {
	tp := &testPlugin{
		desc: plugin.Description{
			Name:       envOr("HOTPATH_TEST_NAME", "test"),
			Version:    envOr("HOTPATH_TEST_VERSION", "1.0.0"),
			ABIVersion: abi.Version,
			Commands:   []string{"echo", "pid", "log"},
		},
		loadErr:  os.Getenv("HOTPATH_TEST_LOAD_ERROR"),
		Registry: plugin.NewRegistry(),
		invokes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "invokes_total", Help: "Invoke calls, by command.",
		}, []string{"command"}),
		argBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "invoke_args_bytes", Help: "Size of Invoke arguments.", Buckets: []float64{1, 16, 256},
		}),
	}
	tp.MustRegister(tp.invokes, tp.argBytes)
	if s := os.Getenv("HOTPATH_TEST_ABI"); s != "" {
		v, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("parse HOTPATH_TEST_ABI: %w", err)
		}
		tp.desc.ABIVersion = uint32(v)
	}
	if s := os.Getenv("HOTPATH_TEST_UNHEALTHY_AFTER"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("parse HOTPATH_TEST_UNHEALTHY_AFTER: %w", err)
		}
		tp.unhealthyAfter = d
	}
	return tp, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func (tp *testPlugin) Describe(_ context.Context, req *plugin.DescribeRequest) (*plugin.Description, error) {
	d := tp.desc
	var cfg struct {
		Slots []string `json:"slots"`
	}
	if len(req.Config) > 0 {
		if err := json.Unmarshal(req.Config, &cfg); err != nil {
			return nil, fmt.Errorf("testplugin config: %w", err)
		}
	}
	d.Slots = cfg.Slots
	return &d, nil
}

func (tp *testPlugin) Load(_ context.Context, req *plugin.LoadRequest) (*plugin.LoadResponse, error) {
	if tp.loadErr != "" {
		return nil, errors.New(tp.loadErr)
	}
	plugin.Logger().Info("load", "generation", req.Generation)
	return &plugin.LoadResponse{Programs: map[string]string{}}, nil
}

func (tp *testPlugin) Activate(_ context.Context, req *plugin.ActivateRequest) error {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	tp.activated = time.Now()
	plugin.Logger().Info("activate", "generation", req.Generation, "gc_lease", req.GCLease)
	return nil
}

func (tp *testPlugin) Deactivate(context.Context) error {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	tp.activated = time.Time{}
	return nil
}

func (tp *testPlugin) Health(context.Context) (*plugin.Health, error) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if tp.unhealthyAfter > 0 && !tp.activated.IsZero() && time.Since(tp.activated) > tp.unhealthyAfter {
		return &plugin.Health{Reason: fmt.Sprintf("unhealthy %v after activate, as asked", tp.unhealthyAfter)}, nil
	}
	return &plugin.Health{Healthy: true}, nil
}

func (tp *testPlugin) Invoke(_ context.Context, req *plugin.InvokeRequest) (json.RawMessage, error) {
	tp.invokes.WithLabelValues(req.Command).Inc()
	tp.argBytes.Observe(float64(len(req.Args)))
	switch req.Command {
	case "echo":
		return req.Args, nil
	case "pid":
		return json.Marshal(os.Getpid())
	case "log":
		var msg string
		if err := json.Unmarshal(req.Args, &msg); err != nil {
			return nil, fmt.Errorf("log: args: %w", err)
		}
		plugin.Logger().Info(msg)
		return nil, nil
	}
	return nil, fmt.Errorf("unknown command %q", req.Command)
}
