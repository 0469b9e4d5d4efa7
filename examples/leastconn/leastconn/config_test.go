package leastconn

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestConfig(t *testing.T) {
	cfg, err := ParseConfig(nil)
	if d, _ := cfg.Interval(); err != nil || d != time.Second {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
	cfg, err = ParseConfig(json.RawMessage(`{"refresh": "250ms", "maglev_seed": 7}`))
	if d, _ := cfg.Interval(); err != nil || d != 250*time.Millisecond || cfg.MaglevSeed != 7 {
		t.Fatalf("%+v %v", cfg, err)
	}
	for _, bad := range []string{`{"refresh": "soon"}`, `{"refresh": "1ms"}`, `{"refresh": "2h"}`, `{"refreshh": "1s"}`, `[]`} {
		if _, err := ParseConfig(json.RawMessage(bad)); err == nil {
			t.Errorf("config %s accepted", bad)
		}
	}
}

// TestSDKOnly: the plugin builds with the SDK alone, no other package of
// hotpath (no plugin, no supervisor), and the SDK's test package stays out
// of the binary.
func TestSDKOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "..").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	sdk := 0
	for _, p := range strings.Fields(string(out)) {
		rest, ours := strings.CutPrefix(p, "github.com/hotpath/hotpath/")
		switch {
		case !ours:
		case strings.HasPrefix(rest, "core/plugintest"):
			t.Errorf("the test package %s is linked into the plugin binary", p)
		case strings.HasPrefix(rest, "core/"):
			sdk++
		default:
			t.Errorf("hotpath-leastconn depends on %s", p)
		}
	}
	if sdk == 0 {
		t.Error("no SDK package among the dependencies: the check looked at the wrong thing")
	}
}
