package bench

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/hotpath/hotpath/lab"
	"golang.org/x/sys/unix"
)

// TestPrivilegedRawRoundTrips: the connection-rate client and server make
// real round trips between two pods through the node, one byte each way;
// a port nobody listens on is an error, not a round trip; and a server whose
// socket is shut down stops instead of spinning.
func TestPrivilegedRawRoundTrips(t *testing.T) {
	lab.Privileged(t)
	l := lab.NewT(t, lab.Options{Pods: []string{"a", "b"}})
	srvAddr := netip.AddrPortFrom(l.Pods["b"].IP, 7001)
	var ln int
	if err := l.Pods["b"].NS.Do(func() (err error) {
		ln, err = rawListen(srvAddr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- rawServeLoop(ln) }()
	defer func() {
		unix.Shutdown(ln, unix.SHUT_RDWR)
		if err := <-served; err == nil {
			t.Error("server loop ended without an error after its socket was shut down")
		}
		unix.Close(ln)
	}()

	sa := &unix.SockaddrInet4{Port: 7001, Addr: srvAddr.Addr().As4()}
	closed := &unix.SockaddrInet4{Port: 7002, Addr: srvAddr.Addr().As4()}
	var refused error
	if err := l.Pods["a"].NS.Do(func() error {
		for i := range 50 {
			if err := rawOne(sa); err != nil {
				return fmt.Errorf("round trip %d: %w", i, err)
			}
		}
		refused = rawOne(closed)
		return nil
	}); err != nil {
		t.Fatalf("round trips: %v", err)
	}
	if refused == nil || !strings.Contains(refused.Error(), "connection refused") {
		t.Fatalf("connection to a closed port: got %v, want connection refused", refused)
	}
}

// TestParseServeAddr: the server takes IPv4:port or :port and nothing else.
func TestParseServeAddr(t *testing.T) {
	if a, err := parseServeAddr(":7000"); err != nil || a.String() != "0.0.0.0:7000" {
		t.Errorf(":7000 = %v, %v", a, err)
	}
	for _, bad := range []string{"[::1]:7000", "7000", "10.0.0.1", ""} {
		if _, err := parseServeAddr(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
