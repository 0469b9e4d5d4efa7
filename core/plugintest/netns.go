package plugintest

import (
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Netns moves the calling goroutine into a fresh network namespace with
// loopback up and IPv4 forwarding on, so test runs of stages that consult
// the FIB (RunOn) see routes the test sets up, and nothing of the host's.
// The goroutine stays locked to its thread, which ends with the test: call
// it from the test's own goroutine, before any Run, and run packets from
// that goroutine too (not in a subtest: t.Run starts another one).
func Netns(t testing.TB) {
	t.Helper()
	runtime.LockOSThread() // never unlocked: the thread dies with the goroutine, and its namespace with it
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		t.Fatalf("unshare network namespace: %v", err)
	}
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("loopback up: %v", err)
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		t.Fatalf("enable forwarding: %v", err)
	}
}

// Device adds an up device with address addr (e.g. 192.0.2.1/24) to the
// namespace of Netns and returns its ifindex. It is one end of a veth pair
// whose other end (name + "p") is up in the same namespace, so its
// neighbours can be resolved.
func Device(t testing.TB, name string, addr netip.Prefix) int {
	t.Helper()
	d := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}
	if err := netlink.LinkAdd(d); err != nil {
		t.Fatalf("add veth %s: %v", name, err)
	}
	if p, err := netlink.LinkByName(name + "p"); err != nil || netlink.LinkSetUp(p) != nil {
		t.Fatalf("veth peer of %s: %v", name, err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatalf("device %s: %v", name, err)
	}
	a, err := netlink.ParseAddr(addr.String())
	if err == nil {
		err = netlink.AddrAdd(l, a)
	}
	if err == nil {
		err = netlink.LinkSetUp(l)
	}
	if err != nil {
		t.Fatal(fmt.Errorf("configure device %s: %w", name, err))
	}
	return l.Attrs().Index
}
