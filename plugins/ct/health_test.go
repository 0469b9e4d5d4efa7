package ct

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hotpath/hotpath/core/plugin"
	"github.com/hotpath/hotpath/internal/dptest"
)

// TestPrivilegedGCFailureAfterFirstPassIsUnhealthy: the lease holder's
// periodic passes start failing after a good first pass (here: the maps it
// holds stop working); Health must say so instead of staying green while CT
// entries are no longer collected.
func TestPrivilegedGCFailureAfterFirstPassIsUnhealthy(t *testing.T) {
	h := dptest.New(t)
	p := New(hclog.NewNullLogger())
	cfg := json.RawMessage(`{"gc": {"start": "200ms", "min": "200ms", "max": "1s", "method": "batch"}}`)
	ctx := context.Background()
	if err := p.Activate(ctx, &plugin.ActivateRequest{Generation: 1, BPFFS: h.Layout.Root, Config: cfg, GCLease: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Deactivate(ctx) })
	waitUntil(t, "two good passes", func() bool { return p.gc.Stats().Runs >= 2 })
	if hl, err := p.Health(ctx); err != nil || !hl.Healthy {
		t.Fatalf("health after good passes: %+v, %v", hl, err)
	}

	p.mu.Lock()
	for _, m := range p.maps {
		m.Close() // every later pass fails on a closed map
	}
	p.mu.Unlock()
	waitUntil(t, "the plugin to report the failing GC", func() bool {
		hl, err := p.Health(ctx)
		return err == nil && !hl.Healthy
	})
	hl, _ := p.Health(ctx)
	t.Logf("health: %+v", hl)
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
