package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hotpath/hotpath/internal/node"
	"github.com/hotpath/hotpath/supervisor"
)

// hotpathRun is a real supervisor in a lab's node namespace (internal/node),
// started from the binaries in Context.Bin with a config file.
type hotpathRun struct {
	*node.Node
}

// startSupervisor runs `hotpath supervisor run` on every pod device with
// plugins (paths are filled from bin) and waits until they are all healthy.
func startSupervisor(c *Context, e *labEnv, plugins []supervisor.PluginConfig) (*hotpathRun, error) {
	h := &hotpathRun{Node: node.New(e.lab, c.Bin)}
	cfg := supervisor.Config{BPFFS: e.lab.BPFFS, StateDir: h.StateDir, Devices: append(h.Devices(), e.extraDevices...)}
	for _, p := range plugins {
		if p.Path == "" {
			p.Path = filepath.Join(c.Bin, "hotpath-"+p.Name)
		}
		cfg.Plugins = append(cfg.Plugins, p)
	}
	if err := e.applyOptions(&cfg); err != nil {
		return nil, err
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	path, err := e.writeFile("hotpath.json", string(b))
	if err != nil {
		return nil, err
	}
	if err := h.Start("--config", path); err != nil {
		h.Stop()
		return nil, err
	}
	return h, nil
}

// cli runs the hotpath CLI against this supervisor.
func (h *hotpathRun) cli(args ...string) ([]byte, error) { return h.CLI(args...) }

// invoke runs a plugin command (`hotpath plugin invoke`) and decodes its
// answer into out.
func (h *hotpathRun) invoke(plugin, command string, out any) error {
	raw, err := h.CLI("plugin", "invoke", plugin, command)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

// stop stops the supervisor and any plugin process it left behind.
func (h *hotpathRun) stop() { h.Stop() }

// vmHWM is a process's peak resident set size in bytes.
func vmHWM(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb float64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%f kB", &kb); err != nil {
				return 0, fmt.Errorf("parse VmHWM %q: %w", v, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}
