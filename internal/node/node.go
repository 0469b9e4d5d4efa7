// Package node runs a real hotpath supervisor in a lab's node namespace and
// drives it through the hotpath CLI, for the end-to-end tests, the demo and
// the benchmarks alike.
package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/supervisor"
)

// Node is one supervisor (or none yet) over a lab's private bpffs.
type Node struct {
	Lab      *lab.Lab
	Bin      string // directory with hotpath and the plugin binaries
	StateDir string
	Sup      *lab.Proc
	// Ours are more directories whose binaries count as this node's plugin
	// builds (variant builds of upgrade tests) when Stop ends processes.
	Ours []string

	mu   sync.Mutex
	pids map[int]bool // plugin processes seen
}

// New prepares a node over l; nothing runs yet.
func New(l *lab.Lab, bin string) *Node {
	return &Node{Lab: l, Bin: bin, StateDir: filepath.Join(l.Dir, "state"), pids: map[int]bool{}}
}

// Devices are the node-side devices of every pod, sorted.
func (n *Node) Devices() []string {
	var out []string
	for _, p := range n.Lab.Pods {
		out = append(out, p.HostIf)
	}
	sort.Strings(out)
	return out
}

// Launch starts `hotpath supervisor run` with args (after the pin root and
// state dir) without waiting.
func (n *Node) Launch(args ...string) (*lab.Proc, error) {
	full := append([]string{"--bpffs", n.Lab.BPFFS, "--state-dir", n.StateDir, "supervisor", "run"}, args...)
	p, err := n.Lab.Start(n.Lab.Node, "", filepath.Join(n.Bin, "hotpath"), full...)
	if err != nil {
		return nil, err
	}
	n.Sup = p
	return p, nil
}

// Start launches the supervisor and waits until its control socket answers
// and every plugin is up and healthy.
func (n *Node) Start(args ...string) error {
	p, err := n.Launch(args...)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if p.Exited() {
			return fmt.Errorf("supervisor exited: %v\n%s", p.Wait(0), n.Log(p))
		}
		if ps, err := n.Plugins(); err == nil && allHealthy(ps) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("supervisor not ready after 30s\n%s", n.Log(p))
}

func allHealthy(ps []supervisor.PluginStatus) bool {
	for _, p := range ps {
		if !p.Healthy || p.Pid <= 0 {
			return false
		}
	}
	return true
}

// Log is what a process started by the lab wrote.
func (n *Node) Log(p *lab.Proc) string {
	b, _ := os.ReadFile(p.Log)
	return string(b)
}

// CLI runs the hotpath CLI against this node's pin root and state dir.
func (n *Node) CLI(args ...string) ([]byte, error) {
	full := append([]string{"--bpffs", n.Lab.BPFFS, "--state-dir", n.StateDir}, args...)
	cmd := exec.Command(filepath.Join(n.Bin, "hotpath"), full...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("hotpath %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// JSON runs a listing command with -o json and decodes its output into v.
func (n *Node) JSON(v any, args ...string) error {
	out, err := n.CLI(append(args, "-o", "json")...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("decode %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// Plugins is `hotpath plugin list`; it remembers the pids for Stop.
func (n *Node) Plugins() ([]supervisor.PluginStatus, error) {
	var ps []supervisor.PluginStatus
	if err := n.JSON(&ps, "plugin", "list"); err != nil {
		return nil, err
	}
	n.mu.Lock()
	for _, p := range ps {
		if p.Pid > 0 {
			n.pids[p.Pid] = true
		}
	}
	n.mu.Unlock()
	return ps, nil
}

// Remember records a plugin pid for Stop (an upgrade's new instance).
func (n *Node) Remember(pid int) {
	n.mu.Lock()
	n.pids[pid] = true
	n.mu.Unlock()
}

// Plugin is one plugin's entry of Plugins (zero when it is not listed).
func (n *Node) Plugin(name string) (supervisor.PluginStatus, error) {
	ps, err := n.Plugins()
	if err != nil {
		return supervisor.PluginStatus{}, err
	}
	for _, p := range ps {
		if p.Name == name {
			return p, nil
		}
	}
	return supervisor.PluginStatus{}, fmt.Errorf("plugin %s not listed", name)
}

// Stop stops the supervisor (its plugins with it) and ends plugin processes
// a killed supervisor left behind: by pid, and only after /proc says the pid
// still runs one of this node's plugin binaries.
func (n *Node) Stop() {
	st, _ := supervisor.LoadState(n.StateDir)
	n.mu.Lock()
	defer n.mu.Unlock()
	if st != nil {
		for _, p := range st.Plugins {
			if p.Reattach != nil {
				n.pids[p.Reattach.Pid] = true
			}
		}
		if u := st.Upgrade; u != nil && u.New != nil {
			n.pids[u.New.Pid] = true
		}
	}
	if n.Sup != nil && !n.Sup.Exited() {
		n.Sup.Stop(5 * time.Second)
	}
	for pid := range n.pids {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err == nil && n.ours(strings.TrimSuffix(exe, " (deleted)")) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func (n *Node) ours(exe string) bool {
	for _, d := range append([]string{n.Bin}, n.Ours...) {
		if d != "" && strings.HasPrefix(exe, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
}
