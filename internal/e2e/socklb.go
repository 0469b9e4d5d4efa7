package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotpath/hotpath/lab"
)

// SockLBEnv is the environment switch of the socket LB test matrix:
// HOTPATH_SOCKLB=on runs every Env with the lb plugin's socket LB on (the
// lab gets a cgroup, the test process enters it, the supervisor attaches
// the socket programs there), so each test that starts a supervisor through
// this package runs in that mode. Unset or "off": per-packet LB only.
const SockLBEnv = "HOTPATH_SOCKLB"

// SockLBDefault tells whether HOTPATH_SOCKLB asks for socket LB.
func SockLBDefault() bool { return os.Getenv(SockLBEnv) == "on" }

// Modes runs fn as two subtests, socket LB off and on, for the tests that
// exercise VIP traffic in both modes whatever the environment says.
func Modes(t *testing.T, fn func(t *testing.T, sockLB bool)) {
	for _, on := range []bool{false, true} {
		name := "socklb=off"
		if on {
			name = "socklb=on"
		}
		t.Run(name, func(t *testing.T) { fn(t, on) })
	}
}

// NewMode is NewWith in the given socket LB mode, for a test that chooses
// its mode itself (a Modes subtest, a socket LB test).
func NewMode(t testing.TB, sockLB bool, opts lab.Options) *Env {
	t.Helper()
	return newMode(t, sockLB, true, opts)
}

// newMode creates the Env; chosen is false when the mode is only what
// HOTPATH_SOCKLB says (NewWith), which the matrix guard checks (sockGuard).
func newMode(t testing.TB, sockLB, chosen bool, opts lab.Options) *Env {
	t.Helper()
	if sockLB {
		opts.Cgroup = true
	}
	e := newEnv(t, opts)
	if sockLB {
		if err := e.Lab.EnterCgroup(); err != nil {
			t.Fatal(err)
		}
		// Before the lab's cleanup (registered earlier, so it runs later):
		// no socket this test creates afterwards is in the cgroup.
		t.Cleanup(func() { e.Lab.LeaveCgroup() })
		e.SockLB = true
		if !chosen {
			// Registered last, so it runs first: the counters are read
			// while the lab's bpffs is still mounted.
			t.Cleanup(e.sockGuard)
		}
	}
	return e
}

// sockArgs turns socket LB on for a supervisor started with plugins: the
// lab's cgroup and "socket_lb": true in the lb plugin's config block, merged
// into the config file the test wrote (if any). An lb plugin is added to the
// config only when plugins name it.
func (e *Env) sockArgs(plugins []string) []string {
	e.T.Helper()
	args := []string{"--cgroup", e.Lab.Cgroup}
	hasLB := false
	for _, p := range plugins {
		hasLB = hasLB || strings.HasPrefix(p, "lb=")
	}
	if !hasLB && e.Config == "" {
		return args
	}
	cfg := map[string]any{}
	if e.Config != "" {
		b, err := os.ReadFile(e.Config)
		if err != nil {
			e.T.Fatal(err)
		}
		if err := json.Unmarshal(b, &cfg); err != nil {
			e.T.Fatal(err)
		}
	}
	ps, _ := cfg["plugins"].([]any)
	found := false
	for _, p := range ps {
		pm, _ := p.(map[string]any)
		if pm == nil || pm["name"] != "lb" {
			continue
		}
		c, _ := pm["config"].(map[string]any)
		if c == nil {
			c = map[string]any{}
		}
		c["socket_lb"] = true
		pm["config"], found = c, true
	}
	if !found && hasLB {
		ps = append(ps, map[string]any{"name": "lb", "path": filepath.Join(e.Bin, "hotpath-lb"),
			"config": map[string]any{"socket_lb": true}})
	}
	cfg["plugins"] = ps
	b, err := json.Marshal(cfg)
	if err != nil {
		e.T.Fatal(err)
	}
	path := filepath.Join(e.Lab.Dir, "hotpath-socklb.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		e.T.Fatal(err)
	}
	return append(args, "--config", path)
}

// PerPacket runs fn with this process outside the lab's cgroup, so the
// connections fn opens go through the per-packet path even in socket LB
// mode: for checks that pin what the per-packet path does with a 5-tuple
// (the socket hooks hash a socket, not a tuple; see plugins/lb/bpf/lb_sock.h).
func (e *Env) PerPacket(fn func()) {
	e.T.Helper()
	if !e.SockLB {
		fn()
		return
	}
	if err := e.Lab.LeaveCgroup(); err != nil {
		e.T.Fatal(err)
	}
	defer func() {
		if err := e.Lab.EnterCgroup(); err != nil {
			e.T.Error(err)
		}
	}()
	fn()
}
