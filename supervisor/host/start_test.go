package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/plugin"
)

func TestStartRoundTrip(t *testing.T) {
	s := spec(t, testPlugin, "HOTPATH_TEST_VERSION=2.3.4", "HOTPATH_TEST_LOAD_ERROR=load ct: map ct4: key size 12, want 16")
	inst := mustStart(t, s)
	ctx := context.Background()

	if inst.Desc.Name != "test" || inst.Desc.Version != "2.3.4" || inst.Desc.ABIVersion != abi.Version {
		t.Fatalf("description %+v", inst.Desc)
	}
	out, err := inst.Datapath.Invoke(ctx, &plugin.InvokeRequest{Command: "echo", Args: json.RawMessage(`{"a":[1,"b"]}`)})
	if err != nil || string(out) != `{"a":[1,"b"]}` {
		t.Fatalf("echo: %s, %v", out, err)
	}
	out, err = inst.Datapath.Invoke(ctx, &plugin.InvokeRequest{Command: "pid"})
	if err != nil || string(out) != strconv.Itoa(inst.Pid) {
		t.Fatalf("pid: %s, %v; want %d", out, err, inst.Pid)
	}
	// The plugin's errors arrive with their text intact.
	_, err = inst.Datapath.Invoke(ctx, &plugin.InvokeRequest{Command: "nope"})
	if err == nil || err.Error() != `unknown command "nope"` {
		t.Fatalf("unknown command: got %v", err)
	}
	_, err = inst.Datapath.Load(ctx, &plugin.LoadRequest{Generation: 1})
	if err == nil || err.Error() != "load ct: map ct4: key size 12, want 16" {
		t.Fatalf("load: got %v", err)
	}

	// The socket is in the private directory and the log in its file.
	if inst.Reattach.Network != "unix" || filepath.Dir(inst.Reattach.Address) != s.SocketDir {
		t.Fatalf("reattach %+v, want a unix socket in %s", inst.Reattach, s.SocketDir)
	}
	if inst.Reattach.Pid != inst.Pid || inst.Reattach.ProtocolVersion != plugin.ProtocolVersion {
		t.Fatalf("reattach %+v, pid %d", inst.Reattach, inst.Pid)
	}
	// What the process runs, for ending it safely when it cannot be reattached.
	if exe, err := filepath.EvalSymlinks(s.Path); err != nil || inst.Reattach.Exe != exe {
		t.Fatalf("reattach exe %q, want %q (%v)", inst.Reattach.Exe, exe, err)
	}
	if fi, err := os.Stat(s.SocketDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("socket dir: %v, %v", fi.Mode(), err)
	}
	if _, err := inst.Datapath.Invoke(ctx, &plugin.InvokeRequest{Command: "log", Args: json.RawMessage(`"hello from the plugin"`)}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(s.LogPath); err != nil || !strings.Contains(string(b), `"@message":"hello from the plugin"`) {
		t.Fatalf("log file: %q, %v", b, err)
	}
	if fi, err := os.Stat(s.LogPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("log file mode: %v, %v", fi.Mode(), err)
	}

	if inst.Exited() {
		t.Fatal("exited before Kill")
	}
	inst.Kill()
	select {
	case <-inst.Done():
	default:
		t.Fatal("Done not closed after Kill")
	}
	if !inst.Exited() || alive(inst.Pid) {
		t.Fatalf("pid %d survives Kill", inst.Pid)
	}
	if _, err := os.Stat(inst.Reattach.Address); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
}

func TestStartHealth(t *testing.T) {
	inst := mustStart(t, spec(t, testPlugin, "HOTPATH_TEST_UNHEALTHY_AFTER=300ms"))
	ctx := context.Background()
	if err := inst.Datapath.Activate(ctx, &plugin.ActivateRequest{Generation: 1}); err != nil {
		t.Fatal(err)
	}
	if h, err := inst.Datapath.Health(ctx); err != nil || !h.Healthy {
		t.Fatalf("health after activate: %+v, %v", h, err)
	}
	time.Sleep(400 * time.Millisecond)
	if h, err := inst.Datapath.Health(ctx); err != nil || h.Healthy || h.Reason == "" {
		t.Fatalf("health later: %+v, %v", h, err)
	}
}

// A plugin that crashes is noticed through Done without anyone asking.
func TestStartCrashDone(t *testing.T) {
	inst := mustStart(t, spec(t, testPlugin))
	p, err := os.FindProcess(inst.Pid)
	if err != nil {
		t.Fatal(err)
	}
	p.Kill()
	select {
	case <-inst.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the plugin was killed")
	}
	if !inst.Exited() {
		t.Fatal("Exited false after Done")
	}
}

func sha256Hex(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestStartSHA256(t *testing.T) {
	exe := copyPlugin(t)
	actual := sha256Hex(t, exe)

	s := spec(t, exe)
	s.Name = "ct"
	s.SHA256 = strings.Repeat("ab", 32)
	_, err := Start(context.Background(), s, testLogger(t))
	if err == nil {
		t.Fatal("started with a wrong checksum")
	}
	for _, want := range []string{"start plugin ct:", "checksum mismatch", s.SHA256, actual} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if pids := running(exe); len(pids) != 0 {
		t.Fatalf("processes %v run a binary with a wrong checksum", pids)
	}

	s.Name = "test"
	s.SHA256 = strings.ToUpper(actual)
	inst := mustStart(t, s)
	if inst.Desc.Name != "test" {
		t.Fatalf("description %+v", inst.Desc)
	}

	s.SHA256 = "abc"
	if _, err := Start(context.Background(), s, testLogger(t)); err == nil || !strings.Contains(err.Error(), "hex digits") {
		t.Fatalf("bad checksum syntax: got %v", err)
	}
}

func TestStartMissing(t *testing.T) {
	_, err := Start(context.Background(), Spec{Name: "ct", Path: "/x/y"}, nil)
	if err == nil || err.Error() != "start plugin ct: binary /x/y: no such file" {
		t.Fatalf("got %v", err)
	}

	noexec := filepath.Join(t.TempDir(), "plugin")
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Start(context.Background(), Spec{Name: "ct", Path: noexec}, nil)
	if err == nil || err.Error() != fmt.Sprintf("start plugin ct: binary %s: not executable (mode 0644)", noexec) {
		t.Fatalf("got %v", err)
	}

	_, err = Start(context.Background(), Spec{Name: "ct", Path: t.TempDir()}, nil)
	if err == nil || !strings.HasSuffix(err.Error(), "is a directory") {
		t.Fatalf("got %v", err)
	}
}

func TestStartNotAPlugin(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A child that keeps the stdio pipes open must not stall Start: its
	// pid is written down to check that it was killed too.
	grandchild := filepath.Join(dir, "grandchild.pid")
	tests := []struct {
		name, path, want string
	}{
		{"false", "/bin/false", "is not a hotpath plugin: exited before the handshake (exit status 1)"},
		{"true", "/bin/true", "is not a hotpath plugin: exited before the handshake (exit status 0)"},
		{"garbage", script("garbage", "sleep 30 &\necho $! >"+grandchild+"\necho 'hello, world'\nwait\n"), `is not a hotpath plugin: unrecognized handshake "hello, world"`},
		{"stderr", script("stderr", "echo 'no config here' >&2\nexit 7\n"), `exited before the handshake (exit status 7), stderr: "no config here"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			begin := time.Now()
			_, err := Start(context.Background(), Spec{Name: "ct", Path: tt.path}, testLogger(t))
			if err == nil || !strings.HasPrefix(err.Error(), "start plugin ct: binary "+tt.path+" ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want ...%s", err, tt.want)
			}
			t.Log(err)
			if d := time.Since(begin); d > 3*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
	b, err := os.ReadFile(grandchild)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if alive(pid) {
		t.Fatalf("the garbage script's child %d survives", pid)
	}
}

func TestStartABIMismatch(t *testing.T) {
	exe := copyPlugin(t)
	_, err := Start(context.Background(), spec(t, exe, "HOTPATH_TEST_ABI=99"), testLogger(t))
	want := fmt.Sprintf("start plugin test: abi version mismatch: plugin 99, supervisor %d", abi.Version)
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	if pids := running(exe); len(pids) != 0 {
		t.Fatalf("processes %v survive an ABI mismatch", pids)
	}
}

func TestStartNameMismatch(t *testing.T) {
	exe := copyPlugin(t)
	_, err := Start(context.Background(), spec(t, exe, "HOTPATH_TEST_NAME=lb"), testLogger(t))
	if err == nil || err.Error() != `start plugin test: plugin describes itself as "lb"` {
		t.Fatalf("got %v", err)
	}
	if pids := running(exe); len(pids) != 0 {
		t.Fatalf("processes %v survive a name mismatch", pids)
	}
}

func TestStartExitAtStart(t *testing.T) {
	exe := copyPlugin(t)
	begin := time.Now()
	_, err := Start(context.Background(), spec(t, exe, "HOTPATH_TEST_EXIT_AT_START=1"), testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "exited before the handshake (exit status 3)") ||
		!strings.Contains(err.Error(), "exiting at start as asked") {
		t.Fatalf("got %v", err)
	}
	t.Log(err)
	if d := time.Since(begin); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestStartSocketDirChecked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	s := spec(t, testPlugin)
	s.SocketDir = dir
	_, err := Start(context.Background(), s, nil)
	if err == nil || !strings.Contains(err.Error(), "mode 0755, want 0700") {
		t.Fatalf("got %v", err)
	}
}

// A binary that neither speaks nor exits is given up on at ctx's deadline
// when that comes before the 10s start timeout, and killed.
func TestStartHandshakeTimeout(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	path := filepath.Join(dir, "silent")
	if err := os.WriteFile(path, []byte("#!/bin/sh\necho $$ >"+pidFile+"\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err := Start(ctx, Spec{Name: "ct", Path: path}, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "is not a hotpath plugin: no handshake within 500ms") {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(begin); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); alive(pid) {
		t.Fatalf("silent plugin %d survives", pid)
	}
}
