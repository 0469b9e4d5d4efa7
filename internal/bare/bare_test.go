package bare_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/hotpath/hotpath/internal/bare"
	"github.com/hotpath/hotpath/lab"
)

// TestPrivilegedBareForwardsIntoPods: with the node's IP forwarding off, a
// connection between two pods only gets through when the forwarder
// redirects its packets itself, in both directions.
func TestPrivilegedBareForwardsIntoPods(t *testing.T) {
	lab.Privileged(t)
	l := lab.NewT(t, lab.Options{Pods: []string{"a", "b"}, NoOffload: true})
	if out, err := l.Node.Exec("sysctl", "-qw", "net.ipv4.conf.all.forwarding=0"); err != nil {
		t.Fatalf("forwarding off: %v: %s", err, out)
	}
	srv, err := lab.EchoServer(l.Pods["b"].NS, ":7000")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	addr := netip.AddrPortFrom(l.Pods["b"].IP, 7000).String()
	echo := func(d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		return l.Pods["a"].Echo(ctx, "tcp", addr, []byte("through the node"))
	}
	if err := echo(time.Second); err == nil {
		t.Fatal("echo got through with the node's forwarding off and no forwarder: the test proves nothing")
	}
	f, err := bare.ForLab(l)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := echo(5 * time.Second); err != nil {
		t.Fatalf("echo through the forwarder: %v", err)
	}
}

// TestAttachRefusesBadHops: a hop the program could not use is refused
// before anything is attached.
func TestAttachRefusesBadHops(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	for _, h := range []bare.Hop{
		{IP: netip.MustParseAddr("fd00::1"), Ifindex: 1, DstMAC: mac, SrcMAC: mac},
		{IP: netip.MustParseAddr("10.0.0.1"), Ifindex: 1, DstMAC: mac[:4], SrcMAC: mac},
		{IP: netip.MustParseAddr("10.0.0.1"), Ifindex: 0, DstMAC: mac, SrcMAC: mac},
	} {
		if f, err := bare.Attach([]bare.Hop{h}, nil); err == nil {
			f.Close()
			t.Errorf("hop %+v accepted", h)
		}
	}
}
