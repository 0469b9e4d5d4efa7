// Package e2e runs the real hotpath binaries in a lab: the supervisor in the
// node namespace, its plugins as real processes, real traffic between pods.
package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/internal/node"
	"github.com/hotpath/hotpath/lab"
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
		for _, cmd := range []string{"hotpath", "hotpath-ct", "hotpath-lb", "hotpath-first", "hotpath-nat", "hotpath-policy", "hotpath-tunnel"} {
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
		// The out-of-tree example plugin is its own module.
		build := exec.Command("go", "build", "-o", filepath.Join(binDir, "hotpath-leastconn"), ".")
		build.Dir = filepath.Join(root, "examples", "leastconn")
		if out, err := build.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build hotpath-leastconn: %v\n%s", err, out)
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

// Env is one lab with a supervisor, for tests: node.Node's mechanics with
// failures reported through the test.
type Env struct {
	*node.Node
	T      testing.TB
	Config string   // JSON config file given to the supervisor, if any
	Extra  []string // more `supervisor run` flags
	// SockLB: the lb plugin translates at the socket for this process
	// (socklb.go); set by NewMode and by HOTPATH_SOCKLB=on.
	SockLB bool
}

// New creates a lab with pods (offloads off, private bpffs).
func New(t testing.TB, pods ...string) *Env {
	t.Helper()
	return NewWith(t, lab.Options{Pods: pods})
}

// NewWith is New with more lab options (e.g. External); offloads are off
// and the bpffs private whatever opts says. Socket LB is on when
// HOTPATH_SOCKLB=on (see SockLBEnv).
func NewWith(t testing.TB, opts lab.Options) *Env {
	t.Helper()
	return newMode(t, SockLBDefault(), false, opts)
}

func newEnv(t testing.TB, opts lab.Options) *Env {
	t.Helper()
	lab.Privileged(t)
	bin := Binaries(t)
	opts.NoOffload, opts.MountBPFFS = true, true
	l := lab.NewT(t, opts)
	e := &Env{Node: node.New(l, bin), T: t}
	// Registered after the lab's own cleanup, so it runs first: plugins a
	// killed supervisor left behind are ended before namespaces go away.
	t.Cleanup(func() {
		variantMu.Lock()
		e.Ours = []string{variantDir}
		variantMu.Unlock()
		e.Stop()
	})
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

// runArgs are the `supervisor run` flags: every pod's device, the plugins
// (name=path), the config file and Extra.
func (e *Env) runArgs(plugins ...string) []string {
	var args []string
	for _, dev := range e.Devices() {
		args = append(args, "--device", dev)
	}
	for _, p := range plugins {
		args = append(args, "--plugin", p)
	}
	if e.SockLB {
		args = append(args, e.sockArgs(plugins)...)
	} else if e.Config != "" {
		args = append(args, "--config", e.Config)
	}
	return append(args, e.Extra...)
}

// PluginFlag is the --plugin value name=path of one of the built plugin binaries.
func (e *Env) PluginFlag(name string) string {
	return name + "=" + filepath.Join(e.Bin, "hotpath-"+name)
}

// StartSupervisor runs the supervisor in the node namespace and waits until
// it and its plugins are up.
func (e *Env) StartSupervisor(plugins ...string) *lab.Proc {
	e.T.Helper()
	if err := e.Start(e.runArgs(plugins...)...); err != nil {
		e.T.Fatal(err)
	}
	return e.Sup
}

// RunSupervisor runs the supervisor to completion (for start failures) and
// returns what it wrote.
func (e *Env) RunSupervisor(timeout time.Duration, plugins ...string) (string, error) {
	p, err := e.Launch(e.runArgs(plugins...)...)
	if err != nil {
		return "", err
	}
	werr := p.Wait(timeout)
	return e.Log(p), werr
}

// JSON runs the CLI and decodes its JSON output into v.
func (e *Env) JSON(v any, args ...string) {
	e.T.Helper()
	if err := e.Node.JSON(v, args...); err != nil {
		e.T.Fatal(err)
	}
}

// CT lists CT entries.
func (e *Env) CT() []ctmap.Record {
	var recs []ctmap.Record
	e.JSON(&recs, "ct", "list")
	return recs
}

// Plugins lists plugins.
func (e *Env) Plugins() []supervisor.PluginStatus {
	e.T.Helper()
	ps, err := e.Node.Plugins()
	if err != nil {
		e.T.Fatal(err)
	}
	return ps
}

// PluginStatus returns plugin name's entry of `plugin list`.
func (e *Env) PluginStatus(name string) supervisor.PluginStatus {
	e.T.Helper()
	p, err := e.Node.Plugin(name)
	if err != nil {
		e.T.Fatal(err)
	}
	return p
}

// Status returns `hotpath status -o json`.
func (e *Env) Status() supervisor.Status {
	var st supervisor.Status
	e.JSON(&st, "status")
	return st
}
