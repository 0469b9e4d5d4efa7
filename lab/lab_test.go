package lab

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestAddPodRejectsBadNames(t *testing.T) {
	l := &Lab{}
	for _, name := range []string{"", "a/b", "has space", "-lead", "thirteenchars"} {
		if _, err := l.AddPod(name); err == nil {
			t.Errorf("AddPod(%q) succeeded", name)
		}
	}
}

func TestPrivilegedLabTraffic(t *testing.T) {
	Privileged(t)
	t.Parallel()
	rootBefore := rootSysctls(t)

	start := time.Now()
	l := NewT(t, Options{Pods: []string{"a", "b", "c"}})
	t.Logf("3-pod lab %s up in %v", l.ID, time.Since(start))
	a, b, c := l.Pods["a"], l.Pods["b"], l.Pods["c"]
	if c.Index != 3 || c.IP != netip.MustParseAddr("10.240.3.2") ||
		c.Gateway != netip.MustParseAddr("10.240.3.1") || c.HostIf != "lxcc" {
		t.Fatalf("pod c = %+v", *c)
	}
	mustContain(t, mustExec(t, a.NS, "ip", "-4", "-o", "addr", "show", "dev", "eth0"), "10.240.1.2/24")
	mustContain(t, mustExec(t, a.NS, "ip", "route", "show", "default"), "via 10.240.1.1 dev eth0")
	mustContain(t, mustExec(t, l.Node, "ip", "-4", "-o", "addr", "show", "dev", "lxcb"), "10.240.2.1/24")
	for key, want := range map[string]string{
		"ipv4/ip_forward":              "1",
		"ipv4/conf/all/rp_filter":      "0",
		"ipv4/conf/default/rp_filter":  "0",
		"ipv4/conf/lxca/rp_filter":     "0",
		"ipv4/conf/lxcc/rp_filter":     "0",
		"ipv4/conf/lxcb/forwarding":    "1",
		"ipv4/conf/default/forwarding": "1",
	} {
		if got := strings.TrimSpace(mustExec(t, l.Node, "cat", "/proc/sys/net/"+key)); got != want {
			t.Errorf("node %s = %s, want %s", key, got, want)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// TCP pod a -> node -> pod b, big enough for many segments.
	echo, err := EchoServer(b.NS, netip.AddrPortFrom(b.IP, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 1<<20)
	rand.Read(payload)
	if err := a.Echo(ctx, "tcp", echo.Addr.String(), payload); err != nil {
		t.Fatal(err)
	}
	// The connection really comes from a's address (routed, not NATed).
	conn, err := a.Dial(ctx, "tcp", echo.Addr.String())
	if err != nil {
		t.Fatal(err)
	}
	if got := conn.LocalAddr().(*net.TCPAddr).IP.String(); got != "10.240.1.2" {
		t.Errorf("local addr %s, want 10.240.1.2", got)
	}
	conn.Close()

	named, err := ServeName(c.NS, "0.0.0.0:8080", "c")
	if err != nil {
		t.Fatal(err)
	}
	defer named.Close()
	if got, err := a.AskName(ctx, "tcp", "10.240.3.2:8080"); err != nil || got != "c" {
		t.Errorf("AskName tcp = %q, %v; want c", got, err)
	}

	udp, err := UDPEcho(b.NS, "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	udpAddr := netip.AddrPortFrom(b.IP, uint16(udp.Addr.(*net.UDPAddr).Port)).String()
	if err := c.Echo(ctx, "udp", udpAddr, []byte("ping over udp")); err != nil {
		t.Fatal(err)
	}
	udpNamed, err := UDPServeName(a.NS, "10.240.1.2:5353", "a")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.AskName(ctx, "udp", "10.240.1.2:5353"); err != nil || got != "a" {
		t.Errorf("AskName udp = %q, %v; want a", got, err)
	}
	if err := udpNamed.Close(); err != nil {
		t.Errorf("close udp server: %v", err)
	}

	// Growing the lab: the new pod is reachable at once.
	d, err := l.AddPod("d")
	if err != nil {
		t.Fatal(err)
	}
	if d.Index != 4 || d.IP != netip.MustParseAddr("10.240.4.2") {
		t.Errorf("pod d = %+v", *d)
	}
	if err := d.Echo(ctx, "tcp", echo.Addr.String(), []byte("hello from d")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AddPod("a"); err == nil {
		t.Error("AddPod(a) twice succeeded")
	}

	// Nothing leaked into the root namespace.
	if _, err := net.InterfaceByName("lxca"); err == nil {
		t.Error("lxca exists in the root namespace")
	}
	if got := rootSysctls(t); got != rootBefore {
		t.Errorf("root namespace sysctls changed: %s -> %s", rootBefore, got)
	}
}

func TestPrivilegedLabNoOffload(t *testing.T) {
	Privileged(t)
	if _, err := exec.LookPath("ethtool"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ethtool missing (CI=true)")
		}
		t.Skip("ethtool missing")
	}
	t.Parallel()
	off := NewT(t, Options{Pods: []string{"a"}, NoOffload: true})
	for _, end := range []struct {
		ns     *NS
		ifname string
	}{{off.Node, "lxca"}, {off.Pods["a"].NS, "eth0"}} {
		f := features(t, end.ns, end.ifname)
		for name, want := range map[string]string{
			"tcp-segmentation-offload":     "off",
			"generic-segmentation-offload": "off",
			"generic-receive-offload":      "off",
			"tx-checksumming":              "on",
		} {
			if f[name] != want {
				t.Errorf("%s %s = %q, want %s", end.ifname, name, f[name], want)
			}
		}
	}
	// Control: without the option veths do TSO, so the option is what
	// turned it off.
	on := NewT(t, Options{Pods: []string{"a"}})
	if got := features(t, on.Node, "lxca")["tcp-segmentation-offload"]; got != "on" {
		t.Errorf("default lxca tso = %q, want on", got)
	}

	srv, err := EchoServer(off.Node, "10.240.1.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	payload := make([]byte, 256<<10)
	rand.Read(payload)
	if err := off.Pods["a"].Echo(ctx, "tcp", srv.Addr.String(), payload); err != nil {
		t.Fatal(err)
	}
}

// Not parallel: it changes PATH.
func TestPrivilegedLabNoOffloadNeedsEthtool(t *testing.T) {
	Privileged(t)
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := os.Symlink(ip, filepath.Join(bin, "ip")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	l, err := New(Options{Pods: []string{"a"}, NoOffload: true})
	if err == nil {
		l.Close()
		t.Fatal("New with NoOffload and no ethtool succeeded")
	}
	mustContain(t, err.Error(), "ethtool")
}

func TestPrivilegedLabClose(t *testing.T) {
	Privileged(t)
	t.Parallel()
	l, err := New(Options{Pods: []string{"a", "b"}, MountBPFFS: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close() // no-op unless the test fails before Close below
	a := l.Pods["a"]

	mustContain(t, mountsAt(t, l.BPFFS), " bpf ")
	// Visible to processes run under `ip netns exec` (their own mount ns).
	mustContain(t, mustExec(t, a.NS, "stat", "-f", "-c", "%T", l.BPFFS), "bpf")

	sleeper, err := l.Start(a.NS, "", "sleep", "1000")
	if err != nil {
		t.Fatal(err)
	}
	stubborn, err := l.Start(l.Node, filepath.Join(l.Dir, "stubborn.log"),
		"sh", "-c", `trap "" TERM; echo ready; while :; do sleep 0.1; done`)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "sleep to exec", func() bool { return comm(sleeper.Pid) == "sleep" })
	if got, want := inode(t, fmt.Sprintf("/proc/%d/ns/net", sleeper.Pid)), inode(t, a.Path()); got != want {
		t.Errorf("started process in netns %d, want %d", got, want)
	}
	waitFor(t, "trap installed", func() bool {
		b, _ := os.ReadFile(stubborn.Log)
		return strings.Contains(string(b), "ready")
	})

	names := []string{l.Node.Name, a.NS.Name, l.Pods["b"].NS.Name} // a.Name is the pod name
	dir, bpffs := l.Dir, l.BPFFS
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	if !sleeper.Exited() || !stubborn.Exited() {
		t.Fatal("started processes still running after Close")
	}
	if err := sleeper.Wait(0); err == nil || !strings.Contains(err.Error(), "terminated") {
		t.Errorf("sleep exit = %v, want SIGTERM", err)
	}
	if err := stubborn.Wait(0); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("TERM-ignoring sh exit = %v, want SIGKILL", err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(mustRun(t, "ip", "netns", "list"), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			listed[f[0]] = true
		}
	}
	for _, name := range names {
		if listed[name] {
			t.Errorf("netns %s still listed after Close", name)
		}
	}
	if m := mountsAt(t, bpffs); m != "" {
		t.Errorf("bpffs still mounted: %s", m)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lab dir %s still there: %v", dir, err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := l.Start(l.Node, "", "true"); err == nil {
		t.Error("Start after Close succeeded")
	}
}

// Not parallel: it checks that no thread of the test binary is left in a
// lab namespace, which other tests' Do calls would make racy.
func TestPrivilegedLabDo(t *testing.T) {
	Privileged(t)
	l := NewT(t, Options{Pods: []string{"a"}})
	a := l.Pods["a"]

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := inode(t, "/proc/thread-self/ns/net")
	var inside uint64
	if err := a.Do(func() error {
		fi, err := os.Stat("/proc/thread-self/ns/net") // no t.Fatal inside Do
		if err == nil {
			inside = fi.Sys().(*syscall.Stat_t).Ino
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if want := inode(t, a.Path()); inside != want {
		t.Errorf("inside Do: netns %d, want %d", inside, want)
	}
	if after := inode(t, "/proc/thread-self/ns/net"); after != before {
		t.Errorf("caller thread netns changed: %d -> %d", before, after)
	}

	sentinel := errors.New("sentinel")
	if err := a.Do(func() error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("Do error = %v, want sentinel", err)
	}
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want boom", r)
			}
		}()
		a.Do(func() error { panic("boom") })
	}()

	// Many Do calls on many threads; afterwards every thread is back home.
	errs := make(chan error, 64)
	for range cap(errs) {
		go func() {
			errs <- a.Do(func() error { time.Sleep(time.Millisecond); return nil })
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	tasks, err := filepath.Glob("/proc/self/task/*/ns/net")
	if err != nil || len(tasks) == 0 {
		t.Fatalf("list threads: %v", err)
	}
	for _, task := range tasks {
		if ino := inode(t, task); ino != before {
			t.Errorf("%s in netns %d, want %d", task, ino, before)
		}
	}
}

func mustExec(t *testing.T, ns *NS, args ...string) string {
	t.Helper()
	out, err := ns.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
	return string(out)
}

func mustContain(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Fatalf("%q does not contain %q", s, sub)
	}
}

// features parses `ethtool -k` into name -> "on"/"off".
func features(t *testing.T, ns *NS, ifname string) map[string]string {
	t.Helper()
	f := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(mustExec(t, ns, "ethtool", "-k", ifname)))
	for sc.Scan() {
		name, val, ok := strings.Cut(strings.TrimSpace(sc.Text()), ": ")
		if ok {
			f[name], _, _ = strings.Cut(val, " ")
		}
	}
	return f
}

func rootSysctls(t *testing.T) string {
	t.Helper()
	var s []string
	for _, key := range []string{"ipv4/ip_forward", "ipv4/conf/all/rp_filter", "ipv4/conf/default/rp_filter"} {
		b, err := os.ReadFile("/proc/sys/net/" + key)
		if err != nil {
			t.Fatal(err)
		}
		s = append(s, key+"="+strings.TrimSpace(string(b)))
	}
	return strings.Join(s, " ")
}

// mountsAt returns the /proc/mounts lines for mount point dir.
func mountsAt(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[1] == dir {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "\n")
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
