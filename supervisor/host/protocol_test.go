package host

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hotpath/hotpath/core/plugin"
)

// protocolVariant builds internal/testplugin announcing another protocol
// version (see core/plugin's serveMajor and serveMinor).
func protocolVariant(t *testing.T, name, value string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "hotpath-testplugin")
	build := exec.Command("go", "build", "-ldflags", "-X github.com/hotpath/hotpath/core/plugin."+name+"="+value,
		"-o", out, "github.com/hotpath/hotpath/internal/testplugin")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build testplugin with %s=%s: %v\n%s", name, value, err, b)
	}
	return out
}

// A plugin of another major version is refused at the handshake, with both
// versions named, and does not survive.
func TestStartProtocolMajorMismatch(t *testing.T) {
	exe := protocolVariant(t, "serveMajor", "3")
	_, err := Start(context.Background(), spec(t, exe), testLogger(t))
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("got %v, want ErrProtocol", err)
	}
	want := "plugin speaks protocol 3.x, supervisor speaks " + plugin.VersionString(plugin.ProtocolVersion, plugin.ProtocolMinor)
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), exe) {
		t.Fatalf("got %q, want it to name the binary and say %q", err, want)
	}
	if pids := running(exe); len(pids) != 0 {
		t.Fatalf("processes %v survive a protocol mismatch", pids)
	}
}

// A plugin one minor version older starts; it reports its minor version and
// has no Metrics call, which the host sees as Unimplemented.
func TestStartOlderMinor(t *testing.T) {
	// Minor 0 is the one without Metrics; every minor since only adds.
	older := 0
	exe := protocolVariant(t, "serveMinor", "0")
	inst := mustStart(t, spec(t, exe))
	if inst.Desc.ProtocolMinor != uint32(older) {
		t.Fatalf("described minor %d, want %d", inst.Desc.ProtocolMinor, older)
	}
	if _, err := inst.Datapath.Invoke(context.Background(), &plugin.InvokeRequest{Command: "pid"}); err != nil {
		t.Fatalf("invoke on an older plugin: %v", err)
	}
	_, err := inst.Datapath.Metrics(context.Background())
	if status.Code(errors.Unwrap(err)) != codes.Unimplemented {
		t.Fatalf("metrics of a %d.%d plugin: %v, want Unimplemented", plugin.ProtocolVersion, older, err)
	}
}

// Describe gets the plugin's config; Metrics brings back the plugin's own
// client_golang counter and histogram through go-plugin.
func TestStartConfigAndMetrics(t *testing.T) {
	s := spec(t, copyPlugin(t))
	s.Config = json.RawMessage(`{"slots": ["ct", "lb"]}`)
	inst := mustStart(t, s)
	if !slices.Equal(inst.Desc.Slots, []string{"ct", "lb"}) || inst.Desc.ProtocolMinor != plugin.ProtocolMinor {
		t.Fatalf("description %+v: want the slots of its config and minor %d", inst.Desc, plugin.ProtocolMinor)
	}
	ctx := context.Background()
	for _, args := range []string{`"a"`, `"a much longer argument"`} {
		if _, err := inst.Datapath.Invoke(ctx, &plugin.InvokeRequest{Command: "echo", Args: json.RawMessage(args)}); err != nil {
			t.Fatal(err)
		}
	}
	fams, err := inst.Datapath.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		byName[f.GetName()] = f
	}
	inv := byName["invokes_total"]
	if inv.GetType() != dto.MetricType_COUNTER || len(inv.GetMetric()) != 1 || inv.GetMetric()[0].GetCounter().GetValue() != 2 ||
		inv.GetMetric()[0].GetLabel()[0].GetValue() != "echo" {
		t.Errorf("invokes_total: %v", inv)
	}
	h := byName["invoke_args_bytes"]
	if h.GetType() != dto.MetricType_HISTOGRAM || h.GetMetric()[0].GetHistogram().GetSampleCount() != 2 ||
		h.GetMetric()[0].GetHistogram().GetBucket()[1].GetCumulativeCount() != 1 { // 3 bytes <= 16 < 24 bytes
		t.Errorf("invoke_args_bytes: %v", h)
	}

	// A config the plugin cannot parse fails Describe, and the start.
	s = spec(t, copyPlugin(t))
	s.Config = json.RawMessage(`{"slots": "ct"}`)
	if _, err := Start(ctx, s, testLogger(t)); err == nil || !strings.Contains(err.Error(), "testplugin config") {
		t.Fatalf("bad config: %v", err)
	}
}
