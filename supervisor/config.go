package supervisor

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"

	"github.com/hotpath/hotpath/cluster"
	"github.com/hotpath/hotpath/core/pin"
)

// Config is everything `hotpath supervisor run` needs. Flags fill it; a JSON
// config file (--config) can too, flags win.
type Config struct {
	BPFFS       string         `json:"bpffs"`
	StateDir    string         `json:"state_dir"`
	Devices     []string       `json:"devices"`
	Plugins     []PluginConfig `json:"plugins"`
	MetricsAddr string         `json:"metrics_addr"`
	// MapSizes sets max_entries of sizable shared maps, e.g. {"nat4": 524288}.
	MapSizes map[string]uint32 `json:"map_sizes,omitempty"`
	// AutoGrow doubles sizable maps that stay nearly full (autogrow.go); off by default.
	AutoGrow *AutoGrowConfig `json:"auto_grow,omitempty"`
	// Tunnel makes the supervisor create the overlay device (tunnel.go).
	Tunnel *TunnelConfig `json:"tunnel,omitempty"`
	// Cgroup is the cgroup v2 directory plugins' cgroup programs (the lb
	// plugin's socket LB) attach to; default DefaultCgroup, the root.
	Cgroup string `json:"cgroup,omitempty"`
	// DirectRedirect lets the forward stage send a packet straight to its
	// next hop (bpf_redirect_peer into a local pod, bpf_redirect_neigh out
	// of a device) instead of the kernel's forwarding path. Default on.
	DirectRedirect *bool `json:"direct_redirect,omitempty"`
	// The etcd source (kvstore_endpoints, node_name, ...): see package cluster.
	cluster.Config
}

// PluginConfig is one plugin to run.
type PluginConfig struct {
	Name   string          `json:"name"`
	Path   string          `json:"path"`
	SHA256 string          `json:"sha256,omitempty"`
	Config json.RawMessage `json:"config,omitempty"` // handed to the plugin as is
}

// DirectRedirectOn tells whether direct redirects are wanted (the default).
func (c *Config) DirectRedirectOn() bool { return c.DirectRedirect == nil || *c.DirectRedirect }

// DefaultStateDir is the state dir when --state-dir is not given.
const DefaultStateDir = "/run/hotpath"

// Defaults fills what is empty.
func (c *Config) Defaults() {
	if c.BPFFS == "" {
		c.BPFFS = pin.DefaultRoot
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.Cgroup == "" {
		c.Cgroup = DefaultCgroup
	}
}

// LoadConfigFile reads a JSON config file.
func LoadConfigFile(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	var c Config
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("parse config %s: %w", path, err)
	}
	return &c, nil
}

var pluginName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// ParsePluginFlag parses NAME=PATH[,sha256=HEX].
func ParsePluginFlag(s string) (PluginConfig, error) {
	name, rest, ok := strings.Cut(s, "=")
	if !ok || rest == "" {
		return PluginConfig{}, fmt.Errorf("plugin %q: want NAME=PATH[,sha256=HEX]", s)
	}
	parts := strings.Split(rest, ",")
	pc := PluginConfig{Name: name, Path: parts[0]}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		if k != "sha256" {
			return PluginConfig{}, fmt.Errorf("plugin %q: unknown option %q (have sha256)", s, k)
		}
		pc.SHA256 = v
	}
	return pc, nil
}

var hexSHA = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Validate checks the config without touching the kernel.
func (c *Config) Validate() error {
	if !strings.HasPrefix(c.BPFFS, "/") {
		return fmt.Errorf("bpffs %q: want an absolute path", c.BPFFS)
	}
	if !strings.HasPrefix(c.StateDir, "/") {
		return fmt.Errorf("state dir %q: want an absolute path", c.StateDir)
	}
	if c.Cgroup != "" && !strings.HasPrefix(c.Cgroup, "/") {
		return fmt.Errorf("cgroup %q: want an absolute path", c.Cgroup)
	}
	seen := map[string]bool{}
	for _, d := range c.Devices {
		if d == "" || len(d) > 15 || strings.ContainsAny(d, "/ \t") {
			return fmt.Errorf("device %q: not a valid interface name", d)
		}
		if seen["dev:"+d] {
			return fmt.Errorf("device %s given twice", d)
		}
		seen["dev:"+d] = true
	}
	for _, p := range c.Plugins {
		if !pluginName.MatchString(p.Name) {
			return fmt.Errorf("plugin name %q: want lowercase letters, digits and dashes", p.Name)
		}
		if seen["plugin:"+p.Name] {
			return fmt.Errorf("plugin %s given twice", p.Name)
		}
		seen["plugin:"+p.Name] = true
		if p.Path == "" {
			return fmt.Errorf("plugin %s: no path", p.Name)
		}
		if p.SHA256 != "" && !hexSHA.MatchString(strings.ToLower(p.SHA256)) {
			return fmt.Errorf("plugin %s: sha256 %q is not 64 hex digits", p.Name, p.SHA256)
		}
		if len(p.Config) > 0 && !json.Valid(p.Config) {
			return fmt.Errorf("plugin %s: config is not valid JSON", p.Name)
		}
	}
	for name, size := range c.MapSizes {
		if !pin.Sizable[name] {
			return fmt.Errorf("map_sizes: %s is not a sizable shared map", name)
		}
		if size < 1024 || size > 1<<24 {
			return fmt.Errorf("map_sizes: %s %d: want 1024..16777216 entries", name, size)
		}
	}
	if err := c.AutoGrow.validate(); err != nil {
		return err
	}
	if err := c.Tunnel.validate(); err != nil {
		return err
	}
	if err := c.Config.Validate(); err != nil {
		return err
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return fmt.Errorf("metrics addr %q: %w", c.MetricsAddr, err)
		}
	}
	return nil
}
