package host

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// testPlugin is internal/testplugin, built once per test run.
var testPlugin string

const helperEnv = "HOTPATH_HOST_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperHost())
	}
	dir, err := os.MkdirTemp("", "hotpath-host-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testPlugin = filepath.Join(dir, "testplugin")
	build := exec.Command("go", "build", "-o", testPlugin, "github.com/hotpath/hotpath/internal/testplugin")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build testplugin:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// helperHost is a minimal supervisor, run as a child of the test: it starts
// the plugin named by the environment, prints its Reattach JSON and waits to
// be killed.
func helperHost() int {
	spec := Spec{
		Name:      "test",
		Path:      os.Getenv("HOTPATH_HOST_TEST_PLUGIN"),
		SocketDir: os.Getenv("HOTPATH_HOST_TEST_SOCKDIR"),
		LogPath:   os.Getenv("HOTPATH_HOST_TEST_LOG"),
	}
	inst, err := Start(context.Background(), spec, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(inst.Reattach); err != nil {
		inst.Kill()
		return 1
	}
	select {}
}

// copyPlugin gives a test its own copy of the test plugin, so that it can
// tell its plugin processes from everyone else's by executable path.
func copyPlugin(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "hotpath-testplugin")
	src, err := os.Open(testPlugin)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, src); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// Registered after TempDir, so it runs before the directory goes.
	t.Cleanup(func() {
		for _, pid := range running(dst) {
			t.Errorf("plugin process %d still running at cleanup, killing it", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return dst
}

// running lists the live (not zombie) processes executing exe.
func running(exe string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if target, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && target == exe {
			pids = append(pids, pid)
		}
	}
	return pids
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// testLogger sends host logs to t.Log until the test ends; go-plugin's
// goroutines may log after that.
func testLogger(t *testing.T) hclog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.t = nil
		w.mu.Unlock()
	})
	return hclog.New(&hclog.LoggerOptions{Name: "host", Level: hclog.Info, Output: w})
}

type testWriter struct {
	mu sync.Mutex
	t  *testing.T
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.t != nil {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// spec returns a Spec for the test plugin at path with a private socket
// directory and log file.
func spec(t *testing.T, path string, env ...string) Spec {
	dir := t.TempDir()
	return Spec{
		Name:      "test",
		Path:      path,
		SocketDir: filepath.Join(dir, "sock"),
		LogPath:   filepath.Join(dir, "log", "test.log"),
		Env:       env,
	}
}

// mustStart starts a plugin and makes sure it is gone when the test ends.
func mustStart(t *testing.T, s Spec) *Instance {
	t.Helper()
	inst, err := Start(context.Background(), s, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inst.Kill)
	return inst
}
