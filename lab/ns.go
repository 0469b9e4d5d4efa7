package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// netnsDir is where `ip netns` keeps its namespace handles.
const netnsDir = "/var/run/netns"

// NS is a named network namespace created by a Lab.
type NS struct {
	Name string
	lab  *Lab
}

// Path is the namespace handle (/var/run/netns/<name>), e.g. for setns.
func (n *NS) Path() string { return nsPath(n.Name) }

func nsPath(name string) string { return filepath.Join(netnsDir, name) }

// netnsAddMu serializes `ip netns add` within this process: the first add
// bind-mounts /var/run/netns onto itself, and concurrent first adds would
// stack mounts there.
var netnsAddMu sync.Mutex

func createNetns(name string) error {
	netnsAddMu.Lock()
	defer netnsAddMu.Unlock()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("create netns %s: %w: %s", name, err, bytesTrim(out))
	}
	return nil
}

func deleteNetns(name string) error {
	if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
		return fmt.Errorf("delete netns %s: %w: %s", name, err, bytesTrim(out))
	}
	return nil
}

// Exec runs a command inside the namespace via `ip netns exec` and returns
// its combined output. The error includes the output.
func (n *NS) Exec(args ...string) ([]byte, error) {
	if len(args) == 0 {
		return nil, errors.New("exec: no command")
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.Name}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s in %s: %w: %s", strings.Join(args, " "), n.Name, err, bytesTrim(out))
	}
	return out, nil
}

// ipBatch runs ip commands in the namespace in one ip process (`ip -n NS
// -batch -`); ip stops at the first failing line and names it.
func (n *NS) ipBatch(cmds ...string) error {
	cmd := exec.Command("ip", "-n", n.Name, "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ip -n %s: %w: %s", n.Name, err, bytesTrim(out))
	}
	return nil
}

// sysctl writes /proc/sys/<key> from a thread inside the namespace:
// /proc/sys/net resolves against the calling thread's network namespace.
func (n *NS) sysctl(key, value string) error {
	err := n.Do(func() error {
		return os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644)
	})
	if err != nil {
		return fmt.Errorf("sysctl %s=%s in %s: %w", key, value, n.Name, err)
	}
	return nil
}

// waitUp waits until ifname is operationally up and has a real qdisc. A veth
// is usable only after the kernel's linkwatch has run for the carrier change:
// until then its qdisc is noop and every packet sent is silently dropped.
func (n *NS) waitUp(ifname string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		out, err := exec.Command("ip", "-n", n.Name, "-j", "link", "show", "dev", ifname).CombinedOutput()
		if err != nil {
			return fmt.Errorf("show %s in %s: %w: %s", ifname, n.Name, err, bytesTrim(out))
		}
		var links []struct {
			Operstate string `json:"operstate"`
			Qdisc     string `json:"qdisc"`
		}
		if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
			return fmt.Errorf("parse ip -j link show %s: %v: %s", ifname, err, bytesTrim(out))
		}
		if links[0].Operstate == "UP" && links[0].Qdisc != "noop" {
			return nil
		}
		last = links[0].Operstate + " qdisc " + links[0].Qdisc
		if time.Now().After(deadline) {
			return fmt.Errorf("%s in %s not up after %v: %s", ifname, n.Name, timeout, last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Do runs fn on an OS thread switched into the namespace and switches the
// thread back afterwards. Sockets created by fn stay in the namespace and can
// be used from any goroutine. fn runs on its own goroutine, so goroutines
// that fn starts run in the caller's namespace, not in n, and fn must not
// call t.FailNow. A panic in fn is re-raised in the caller.
func (n *NS) Do(fn func() error) error {
	target, err := unix.Open(n.Path(), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", n.Name, err)
	}
	defer unix.Close(target)

	type result struct {
		err      error
		panicked bool
		panicVal any
	}
	done := make(chan result, 1)
	go func() {
		// A Goexit in fn skips the assignment below and reports this.
		res := result{err: errors.New("fn exited via runtime.Goexit (t.FailNow inside Do?)")}
		defer func() { done <- res }()
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			res.err = fmt.Errorf("open current netns: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			res.err = fmt.Errorf("enter netns %s: %w", n.Name, err)
			return
		}
		defer func() {
			if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
				// Stay locked: the runtime then terminates this thread when
				// the goroutine exits instead of reusing it in the wrong ns.
				res.err = errors.Join(res.err, fmt.Errorf("leave netns %s: %w", n.Name, err))
				return
			}
			runtime.UnlockOSThread()
		}()
		defer func() {
			if r := recover(); r != nil {
				res.err, res.panicked, res.panicVal = nil, true, r
			}
		}()
		res.err = fn()
	}()
	res := <-done
	if res.panicked {
		panic(res.panicVal)
	}
	return res.err
}

// Dial connects from inside the namespace.
func (n *NS) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Listen listens inside the namespace.
func (n *NS) Listen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := n.Do(func() (err error) {
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}

// ListenPacket opens a packet socket inside the namespace.
func (n *NS) ListenPacket(network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := n.Do(func() (err error) {
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	return pc, err
}

func bytesTrim(b []byte) string { return strings.TrimSpace(string(b)) }
