package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/supervisor"
)

// hotpathRun is a real supervisor running in a lab's node namespace, started
// the way internal/e2e does it, from the binaries in Context.Bin.
type hotpathRun struct {
	bin      string
	e        *labEnv
	stateDir string
	sup      *lab.Proc
	plugins  map[int]bool // plugin pids seen, ended by stop
	// variants is a directory of other plugin builds (upgrade suite) whose
	// processes stop may end too; "" if none.
	variants string
}

// startSupervisor runs `hotpath supervisor run` on every pod device with
// cfg's plugins (paths are filled from bin) and waits until it answers.
func startSupervisor(c *Context, e *labEnv, plugins []supervisor.PluginConfig) (*hotpathRun, error) {
	h := &hotpathRun{bin: c.Bin, e: e, stateDir: filepath.Join(e.lab.Dir, "state"), plugins: map[int]bool{}}
	cfg := supervisor.Config{BPFFS: e.lab.BPFFS, StateDir: h.stateDir}
	for _, p := range e.lab.Pods {
		cfg.Devices = append(cfg.Devices, p.HostIf)
	}
	sort.Strings(cfg.Devices)
	for _, p := range plugins {
		if p.Path == "" {
			p.Path = filepath.Join(c.Bin, "hotpath-"+p.Name)
		}
		cfg.Plugins = append(cfg.Plugins, p)
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	path, err := e.writeFile("hotpath.json", string(b))
	if err != nil {
		return nil, err
	}
	h.sup, err = e.lab.Start(e.lab.Node, "", filepath.Join(c.Bin, "hotpath"), "supervisor", "run", "--config", path)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if h.sup.Exited() {
			return nil, fmt.Errorf("supervisor exited: %v: %s", h.sup.Wait(0), h.log())
		}
		if ps, err := h.pluginList(); err == nil && healthy(ps) == len(plugins) {
			return h, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.stop()
	return nil, fmt.Errorf("supervisor not ready after 30s: %s", h.log())
}

// cli runs the hotpath CLI against this supervisor's pins and state dir.
func (h *hotpathRun) cli(args ...string) ([]byte, error) {
	full := append([]string{"--bpffs", h.e.lab.BPFFS, "--state-dir", h.stateDir}, args...)
	cmd := exec.Command(filepath.Join(h.bin, "hotpath"), full...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("hotpath %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// pluginList is `hotpath plugin list -o json`; it remembers the pids.
func (h *hotpathRun) pluginList() ([]supervisor.PluginStatus, error) {
	out, err := h.cli("plugin", "list", "-o", "json")
	if err != nil {
		return nil, err
	}
	var ps []supervisor.PluginStatus
	if err := json.Unmarshal(out, &ps); err != nil {
		return nil, fmt.Errorf("decode plugin list: %w", err)
	}
	for _, p := range ps {
		if p.Pid > 0 {
			h.plugins[p.Pid] = true
		}
	}
	return ps, nil
}

// invoke runs a plugin command through the control API (the route behind
// plugin-specific CLI commands) and decodes the answer into out.
func (h *hotpathRun) invoke(plugin, command string, out any) error {
	sock := supervisor.SocketPath(h.stateDir)
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	body, err := json.Marshal(supervisor.InvokeRequest{Command: command})
	if err != nil {
		return err
	}
	resp, err := hc.Post("http://hotpath/v1/plugins/"+plugin+"/invoke", "application/json", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("invoke %s %s: %w", plugin, command, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("invoke %s %s: %s: %s", plugin, command, resp.Status, raw)
	}
	return json.Unmarshal(raw, out)
}

func healthy(ps []supervisor.PluginStatus) int {
	n := 0
	for _, p := range ps {
		if p.Healthy && p.Pid > 0 {
			n++
		}
	}
	return n
}

// stop ends the supervisor (which stops its plugins), then any plugin
// process that outlived it: by pid, and only after /proc confirms the pid
// still runs one of our plugin binaries.
func (h *hotpathRun) stop() {
	if h.sup != nil {
		h.sup.Stop(5 * time.Second)
	}
	for pid := range h.plugins {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		ours := strings.HasPrefix(exe, h.bin+"/hotpath-") || (h.variants != "" && strings.HasPrefix(exe, h.variants+"/"))
		if err == nil && ours {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func (h *hotpathRun) log() string {
	b, _ := os.ReadFile(h.sup.Log)
	return tail(b, 2000)
}

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
