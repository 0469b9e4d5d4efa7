package supervisor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotpath/hotpath/supervisor/host"
)

func TestStateSaveReplacesWholeFile(t *testing.T) {
	dir := t.TempDir()
	st := &State{ActiveGen: 3, NextGen: 4, Plugins: map[string]*PluginState{
		"ct": {Version: "1", Path: "/b/ct", Reattach: &host.Reattach{Pid: 7, Network: "unix", Address: "/s", Exe: "/b/ct"}},
	}}
	if err := st.Save(dir); err != nil {
		t.Fatal(err)
	}
	st.Plugins["ct"].Version = "2"
	if err := st.Save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.ActiveGen != 3 || got.Plugins["ct"].Version != "2" || got.Plugins["ct"].Reattach.Exe != "/b/ct" {
		t.Errorf("loaded %+v", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("state dir holds %d files, want state.json alone: %v", len(entries), entries)
	}
	if fi, err := os.Stat(statePath(dir)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode: %v, %v", fi.Mode(), err)
	}
}

func TestStateSaveReportsErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	err := (&State{Plugins: map[string]*PluginState{}}).Save(dir)
	if err == nil || !strings.Contains(err.Error(), "write state") {
		t.Errorf("save into a missing dir: %v", err)
	}
}

func TestUpgradeRequestWantsAbsoluteBinary(t *testing.T) {
	for bin, ok := range map[string]bool{"/opt/hotpath-ct": true, "./hotpath-ct": false, "hotpath-ct": false, "": false} {
		if err := (UpgradeRequest{Binary: bin}).check(); (err == nil) != ok {
			t.Errorf("binary %q: %v", bin, err)
		}
	}
}

func TestConfigSHAIgnoresWhitespace(t *testing.T) {
	a, b := configSHA([]byte(`{"a": 1}`)), configSHA([]byte("{\"a\":1}\n"))
	if a != b || a == "" || configSHA(nil) != "" || configSHA([]byte("null")) != "" || a == configSHA([]byte(`{"a":2}`)) {
		t.Errorf("config hashes: %q %q", a, b)
	}
}

func TestEffectiveBinaryFollowsUpgradeUntilConfigChanges(t *testing.T) {
	pc := PluginConfig{Name: "ct", Path: "/bin/ct-1"}
	ps := &PluginState{Path: "/bin/ct-2", SHA256: "ab", Upgraded: &Binary{Path: "/bin/ct-1"}}
	if got := effective(pc, ps); got.Path != "/bin/ct-2" || got.SHA256 != "ab" {
		t.Errorf("upgraded: %+v", got)
	}
	pc.Path = "/bin/ct-3"
	if got := effective(pc, ps); got.Path != "/bin/ct-3" {
		t.Errorf("config changed: %+v", got)
	}
	if got := effective(pc, nil); got.Path != "/bin/ct-3" {
		t.Errorf("no state: %+v", got)
	}
}
