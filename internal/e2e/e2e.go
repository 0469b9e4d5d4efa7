// Package e2e runs the real hotpath binaries in a lab: the supervisor in the
// node namespace, its plugins as real processes, real traffic between pods.
package e2e

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
	"testing"
	"time"

	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/plugins/ct"
	"github.com/hotpath/hotpath/supervisor"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Binaries returns the directory holding hotpath and its plugin binaries:
// $HOTPATH_BIN when set (make test builds them first), else a fresh build.
func Binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if d := os.Getenv("HOTPATH_BIN"); d != "" {
			binDir = d
			return
		}
		binDir, buildErr = os.MkdirTemp("", "hotpath-bin-")
		if buildErr != nil {
			return
		}
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		for _, cmd := range []string{"hotpath", "hotpath-ct", "hotpath-lb", "hotpath-first"} {
			if _, err := os.Stat(filepath.Join(root, "cmd", cmd)); err != nil {
				continue
			}
			build := exec.Command("go", "build", "-o", filepath.Join(binDir, cmd), "./cmd/"+cmd)
			build.Dir = root
			out, err := build.CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("build %s: %v\n%s", cmd, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// Env is one lab with a supervisor.
type Env struct {
	T        testing.TB
	Lab      *lab.Lab
	Bin      string
	BPFFS    string
	StateDir string
	Sup      *lab.Proc
	Config   string   // JSON config file given to the supervisor, if any
	Extra    []string // more `supervisor run` flags

	mu   sync.Mutex
	pids map[int]bool // plugin processes seen, ended at cleanup
}

// New creates a lab with pods (offloads off, private bpffs).
func New(t testing.TB, pods ...string) *Env {
	t.Helper()
	lab.Privileged(t)
	bin := Binaries(t)
	l := lab.NewT(t, lab.Options{Pods: pods, NoOffload: true, MountBPFFS: true})
	e := &Env{T: t, Lab: l, Bin: bin, BPFFS: l.BPFFS, StateDir: filepath.Join(l.Dir, "state"), pids: map[int]bool{}}
	// Registered after the lab's own cleanup, so it runs first: plugins a
	// killed supervisor left behind are ended before namespaces go away.
	t.Cleanup(e.endPlugins)
	return e
}

// WriteConfig writes a supervisor JSON config and uses it from now on.
func (e *Env) WriteConfig(cfg supervisor.Config) {
	e.T.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		e.T.Fatal(err)
	}
	e.Config = filepath.Join(e.Lab.Dir, "hotpath.json")
	if err := os.WriteFile(e.Config, b, 0o600); err != nil {
		e.T.Fatal(err)
	}
}

// SupervisorArgs is the command line of a supervisor attached to every pod's
// device with the given plugins (name=path).
func (e *Env) SupervisorArgs(plugins ...string) []string {
	args := []string{"--bpffs", e.BPFFS, "--state-dir", e.StateDir, "supervisor", "run"}
	for _, dev := range e.Devices() {
		args = append(args, "--device", dev)
	}
	for _, p := range plugins {
		args = append(args, "--plugin", p)
	}
	if e.Config != "" {
		args = append(args, "--config", e.Config)
	}
	return append(args, e.Extra...)
}

// Devices are the node-side devices of every pod, sorted.
func (e *Env) Devices() []string {
	var out []string
	for _, p := range e.Lab.Pods {
		out = append(out, p.HostIf)
	}
	sort.Strings(out)
	return out
}

// Plugin is name=path of one of the built plugin binaries.
func (e *Env) Plugin(name string) string {
	return name + "=" + filepath.Join(e.Bin, "hotpath-"+name)
}

// StartSupervisor runs the supervisor in the node namespace and waits until
// its control socket answers.
func (e *Env) StartSupervisor(plugins ...string) *lab.Proc {
	e.T.Helper()
	p, err := e.TryStartSupervisor(plugins...)
	if err != nil {
		e.T.Fatal(err)
	}
	return p
}

// TryStartSupervisor is StartSupervisor returning the error (with the
// supervisor's log) instead of failing.
func (e *Env) TryStartSupervisor(plugins ...string) (*lab.Proc, error) {
	p, err := e.Lab.Start(e.Lab.Node, "", filepath.Join(e.Bin, "hotpath"), e.SupervisorArgs(plugins...)...)
	if err != nil {
		return nil, err
	}
	e.Sup = p
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if p.Exited() {
			return nil, fmt.Errorf("supervisor exited: %v\n%s", p.Wait(0), e.Log(p))
		}
		if _, err := e.CLI("status", "-o", "json"); err == nil {
			e.rememberPlugins()
			return p, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("supervisor not ready after 30s\n%s", e.Log(p))
}

// RunSupervisor runs the supervisor to completion (for start failures).
func (e *Env) RunSupervisor(timeout time.Duration, plugins ...string) (string, error) {
	p, err := e.Lab.Start(e.Lab.Node, "", filepath.Join(e.Bin, "hotpath"), e.SupervisorArgs(plugins...)...)
	if err != nil {
		return "", err
	}
	werr := p.Wait(timeout)
	return e.Log(p), werr
}

// Log is what a process started by the lab wrote.
func (e *Env) Log(p *lab.Proc) string {
	b, _ := os.ReadFile(p.Log)
	return string(b)
}

// CLI runs the hotpath CLI against this env's pin root and state dir.
func (e *Env) CLI(args ...string) ([]byte, error) {
	full := append([]string{"--bpffs", e.BPFFS, "--state-dir", e.StateDir}, args...)
	cmd := exec.Command(filepath.Join(e.Bin, "hotpath"), full...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("hotpath %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// JSON runs the CLI and decodes its JSON output into v.
func (e *Env) JSON(v any, args ...string) {
	e.T.Helper()
	out, err := e.CLI(append(args, "-o", "json")...)
	if err != nil {
		e.T.Fatal(err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		e.T.Fatalf("decode %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// CT lists CT entries.
func (e *Env) CT() []ct.Record {
	var recs []ct.Record
	e.JSON(&recs, "ct", "list")
	return recs
}

// Plugins lists plugins, remembering their pids for cleanup.
func (e *Env) Plugins() []supervisor.PluginStatus {
	var ps []supervisor.PluginStatus
	e.JSON(&ps, "plugin", "list")
	e.mu.Lock()
	for _, p := range ps {
		if p.Pid > 0 {
			e.pids[p.Pid] = true
		}
	}
	e.mu.Unlock()
	return ps
}

// PluginStatus returns plugin name's entry of `plugin list`.
func (e *Env) PluginStatus(name string) supervisor.PluginStatus {
	e.T.Helper()
	for _, p := range e.Plugins() {
		if p.Name == name {
			return p
		}
	}
	e.T.Fatalf("plugin %s not listed", name)
	return supervisor.PluginStatus{}
}

// Status returns `hotpath status -o json`.
func (e *Env) Status() supervisor.Status {
	var st supervisor.Status
	e.JSON(&st, "status")
	return st
}

func (e *Env) rememberPlugins() {
	out, err := e.CLI("plugin", "list", "-o", "json")
	if err != nil {
		return
	}
	var ps []supervisor.PluginStatus
	if json.Unmarshal(out, &ps) == nil {
		e.mu.Lock()
		for _, p := range ps {
			e.pids[p.Pid] = true
		}
		e.mu.Unlock()
	}
}

// endPlugins ends plugin processes this test's supervisors started, by pid,
// after checking /proc that the pid still runs one of our plugin binaries.
func (e *Env) endPlugins() {
	st, _ := supervisor.LoadState(e.StateDir)
	e.mu.Lock()
	defer e.mu.Unlock()
	if st != nil {
		for _, p := range st.Plugins {
			if p.Reattach != nil {
				e.pids[p.Reattach.Pid] = true
			}
		}
	}
	if e.Sup != nil && !e.Sup.Exited() {
		e.Sup.Stop(5 * time.Second)
	}
	for pid := range e.pids {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || !e.ours(exe) {
			continue
		}
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// ours tells whether exe is a plugin binary this test run built.
func (e *Env) ours(exe string) bool {
	variantMu.Lock()
	vd := variantDir
	variantMu.Unlock()
	return strings.HasPrefix(exe, e.Bin+"/hotpath-") || (vd != "" && strings.HasPrefix(exe, vd+"/"))
}
