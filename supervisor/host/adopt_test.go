package host

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hotpath/hotpath/core/plugin"
)

func invokePid(t *testing.T, dp plugin.Datapath) int {
	t.Helper()
	out, err := dp.Invoke(context.Background(), &plugin.InvokeRequest{Command: "pid"})
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(string(out))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestAdopt(t *testing.T) {
	exe := copyPlugin(t)
	first := mustStart(t, spec(t, exe))
	saved, err := json.Marshal(first.Reattach)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("reattach %s", saved)
	first.Close()
	if _, err := first.Datapath.Describe(context.Background(), &plugin.DescribeRequest{}); err == nil {
		t.Fatal("Datapath works after Close")
	}
	if !alive(first.Pid) {
		t.Fatal("Close killed the plugin")
	}

	var r Reattach
	if err := json.Unmarshal(saved, &r); err != nil {
		t.Fatal(err)
	}
	inst, err := Adopt(context.Background(), "test", nil, r, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inst.Kill)
	if got := invokePid(t, inst.Datapath); got != first.Pid || inst.Pid != first.Pid {
		t.Fatalf("adopted pid %d (instance %d), started %d", got, inst.Pid, first.Pid)
	}
	if inst.Desc.Name != "test" || inst.Exited() {
		t.Fatalf("adopted %+v, exited %v", inst.Desc, inst.Exited())
	}

	// Adopting under another name fails and leaves the plugin alone.
	if _, err := Adopt(context.Background(), "lb", nil, r, nil); err == nil ||
		err.Error() != `adopt plugin lb: plugin describes itself as "test"` {
		t.Fatalf("adopt as lb: got %v", err)
	}
	// A socket that is not the pid's is refused.
	wrong := r
	wrong.Pid = os.Getpid()
	if _, err := Adopt(context.Background(), "test", nil, wrong, nil); err == nil ||
		!strings.Contains(err.Error(), "belongs to pid "+strconv.Itoa(r.Pid)) {
		t.Fatalf("adopt with the wrong pid: got %v", err)
	}
	if !alive(r.Pid) {
		t.Fatal("failed adoptions killed the plugin")
	}

	inst.Kill()
	select {
	case <-inst.Done():
	default:
		t.Fatal("Done not closed after Kill")
	}
	if alive(r.Pid) {
		t.Fatalf("pid %d survives Kill", r.Pid)
	}

	// Now the pid is gone: adoption fails, quickly.
	begin := time.Now()
	if _, err := Adopt(context.Background(), "test", nil, r, nil); err == nil {
		t.Fatal("adopted a dead plugin")
	} else {
		t.Log(err)
	}
	if d := time.Since(begin); d > time.Second {
		t.Fatalf("failed adoption took %v", d)
	}
}

func TestAdoptBadReattach(t *testing.T) {
	for _, r := range []Reattach{
		{},
		{Pid: 1, Network: "udp", Address: "x"},
		{Pid: os.Getpid(), Network: "unix", Address: filepath.Join(t.TempDir(), "none")},
		{Pid: os.Getpid(), Network: "unix", Address: "x", ProtocolVersion: 9},
	} {
		if _, err := Adopt(context.Background(), "test", nil, r, nil); err == nil || !strings.HasPrefix(err.Error(), "adopt plugin test: ") {
			t.Errorf("%+v: got %v", r, err)
		} else {
			t.Log(err)
		}
	}
}

// The supervisor's death must not take the plugins with it: a host process
// starts the plugin, is SIGKILLed, and the plugin is adopted afterwards. With
// no log file the plugin's logger writes to the dead host's stderr pipe,
// which kills a plugin that does not ignore SIGPIPE.
func TestPluginSurvivesHostDeath(t *testing.T) {
	// Become the orphaned plugin's parent, so that we can reap it: pid 1 in
	// a container may not.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	for _, logToFile := range []bool{false, true} {
		name := "stderr"
		if logToFile {
			name = "logfile"
		}
		t.Run(name, func(t *testing.T) { survive(t, logToFile) })
	}
}

func survive(t *testing.T, logToFile bool) {
	exe := copyPlugin(t)
	dir := t.TempDir()
	logPath := ""
	if logToFile {
		logPath = filepath.Join(dir, "plugin.log")
	}
	host := exec.Command(os.Args[0], "-test.run=^$")
	host.Env = append(os.Environ(),
		helperEnv+"=1",
		"HOTPATH_HOST_TEST_PLUGIN="+exe,
		"HOTPATH_HOST_TEST_SOCKDIR="+filepath.Join(dir, "sock"),
		"HOTPATH_HOST_TEST_LOG="+logPath,
	)
	var stderr strings.Builder
	host.Stderr = &stderr
	stdout, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		host.Process.Kill()
		host.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err != nil {
		host.Process.Kill()
		host.Wait()
		t.Fatalf("read reattach from host: %v, stderr %q", err, stderr.String())
	}
	var r Reattach
	if err := json.Unmarshal(line, &r); err != nil {
		t.Fatalf("reattach %q: %v", line, err)
	}
	t.Cleanup(func() {
		// Reap it (we are its subreaper) whatever happened.
		if target, _ := os.Readlink("/proc/" + strconv.Itoa(r.Pid) + "/exe"); target == exe {
			syscall.Kill(r.Pid, syscall.SIGKILL)
		}
		reap(r.Pid)
	})

	host.Process.Signal(syscall.SIGKILL)
	host.Wait()
	time.Sleep(100 * time.Millisecond) // let the plugin notice, if it would
	if !alive(r.Pid) {
		t.Fatalf("plugin %d died with its host", r.Pid)
	}

	inst, err := Adopt(context.Background(), "test", nil, r, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inst.Kill)
	ctx := context.Background()
	for i := range 3 {
		if _, err := inst.Datapath.Invoke(ctx, &plugin.InvokeRequest{Command: "log", Args: json.RawMessage(`"after the host died ` + strconv.Itoa(i) + `"`)}); err != nil {
			t.Fatalf("log: %v", err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if got := invokePid(t, inst.Datapath); got != r.Pid {
		t.Fatalf("pid %d, want %d", got, r.Pid)
	}
	if logToFile {
		b, err := os.ReadFile(logPath)
		if err != nil || !strings.Contains(string(b), "after the host died 2") {
			t.Fatalf("log file %q, %v", b, err)
		}
	}

	// Kill by pid, as a supervisor would kill a stale plugin; Done notices
	// although the process is not (was not started as) our child.
	syscall.Kill(r.Pid, syscall.SIGKILL)
	select {
	case <-inst.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the adopted plugin was killed")
	}
	if !inst.Exited() {
		t.Fatal("Exited false after Done")
	}
	inst.Kill() // must not hang on a dead adopted plugin
}

// reap waits for pid if it is our child (we are a subreaper).
func reap(pid int) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var ws unix.WaitStatus
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if got == pid || err != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
