package supervisor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/plugin"
)

func TestConfigValidate(t *testing.T) {
	good := func() Config {
		c := Config{Devices: []string{"lxca"}, Plugins: []PluginConfig{{Name: "ct", Path: "/bin/hotpath-ct"}}}
		c.Defaults()
		return c
	}
	if err := func() error { c := good(); return c.Validate() }(); err != nil {
		t.Fatalf("good config refused: %v", err)
	}
	bad := map[string]func(*Config){
		"relative bpffs":     func(c *Config) { c.BPFFS = "bpf" },
		"relative state dir": func(c *Config) { c.StateDir = "run" },
		"long device":        func(c *Config) { c.Devices = []string{"a-very-long-device-name"} },
		"device twice":       func(c *Config) { c.Devices = []string{"lxca", "lxca"} },
		"bad plugin name":    func(c *Config) { c.Plugins[0].Name = "CT!" },
		"plugin twice":       func(c *Config) { c.Plugins = append(c.Plugins, c.Plugins[0]) },
		"no plugin path":     func(c *Config) { c.Plugins[0].Path = "" },
		"short sha256":       func(c *Config) { c.Plugins[0].SHA256 = "abc" },
		"plugin config json": func(c *Config) { c.Plugins[0].Config = []byte("{nope") },
		"metrics addr":       func(c *Config) { c.MetricsAddr = "9400" },
		"relative cgroup":    func(c *Config) { c.Cgroup = "sys/fs/cgroup" },
	}
	for name, mutate := range bad {
		c := good()
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParsePluginFlag(t *testing.T) {
	pc, err := ParsePluginFlag("ct=/bin/hotpath-ct,sha256=" + strings.Repeat("a", 64))
	if err != nil || pc.Name != "ct" || pc.Path != "/bin/hotpath-ct" || len(pc.SHA256) != 64 {
		t.Fatalf("ParsePluginFlag = %+v, %v", pc, err)
	}
	for _, s := range []string{"ct", "ct=", "ct=/x,md5=abc"} {
		if _, err := ParsePluginFlag(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestLoadConfigFileIsStrict(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.json")
	os.WriteFile(p, []byte(`{"devices": ["lxca"], "plugns": []}`), 0o600)
	if _, err := LoadConfigFile(p); err == nil || !strings.Contains(err.Error(), "plugns") {
		t.Errorf("misspelt field: %v", err)
	}
	os.WriteFile(p, []byte(`{"devices": ["lxca"], "plugins": [{"name": "ct", "path": "/x", "config": {"gc": {"min": "1s"}}}]}`), 0o600)
	c, err := LoadConfigFile(p)
	if err != nil || len(c.Plugins) != 1 || !strings.Contains(string(c.Plugins[0].Config), "min") {
		t.Errorf("config = %+v, %v", c, err)
	}
}

func TestConfigDirectRedirect(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		json string
		on   bool
	}{{`{}`, true}, {`{"direct_redirect": true}`, true}, {`{"direct_redirect": false}`, false}} {
		path := filepath.Join(dir, "c.json")
		if err := os.WriteFile(path, []byte(c.json), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfigFile(path)
		if err != nil {
			t.Fatalf("%s: %v", c.json, err)
		}
		if cfg.DirectRedirectOn() != c.on {
			t.Errorf("%s: direct redirects on %v, want %v", c.json, cfg.DirectRedirectOn(), c.on)
		}
	}
}

// TestForwardSlotIsTheSupervisors: a plugin claiming the forward slot is
// refused; the forward stage there is the supervisor's.
func TestForwardSlotIsTheSupervisors(t *testing.T) {
	s := &Supervisor{}
	d := &plugin.Description{Name: "greedy", ABIVersion: abi.Version, Slots: []string{"forward"}}
	if err := s.checkPlugin(d, map[string]string{}); err == nil || !strings.Contains(err.Error(), "supervisor's") {
		t.Fatalf("claim of slot forward: %v, want refused as the supervisor's", err)
	}
	d.Slots = []string{"post-nat"}
	if err := s.checkPlugin(d, map[string]string{}); err != nil {
		t.Fatalf("claim of slot post-nat: %v", err)
	}
}
