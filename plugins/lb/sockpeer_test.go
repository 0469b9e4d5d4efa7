package lb

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/core/services"
	"github.com/hotpath/hotpath/lab"
)

// TestPrivilegedSockPeerOutlivesTheLRU: a TCP socket translated at
// connect() keeps showing the VIP to getpeername when every entry of the
// lb4_sock_rev LRU is gone (as churn of other connections evicts them): it
// holds its peer itself (lb4_sock_peer), and puts nothing in the LRU.
func TestPrivilegedSockPeerOutlivesTheLRU(t *testing.T) {
	l, h, store := newLabLB(t, true, "a", "b")
	b := l.Pods["b"]
	if _, err := lab.ServeName(b.NS, b.IP.String()+":8080", b.Name); err != nil {
		t.Fatal(err)
	}
	spec, err := services.ServiceAddArgs{VIP: "10.96.0.10:80/tcp", Backends: backends(b.IP.String() + ":8080")}.Spec()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Add(spec); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := l.Pods["a"].NS.Dial(ctx, "tcp", "10.96.0.10:80")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	vip := netip.MustParseAddrPort("10.96.0.10:80")
	if got, err := lab.PeerName(conn.(*net.TCPConn)); err != nil || got != vip {
		t.Fatalf("getpeername %s (%v), want the VIP %s", got, err, vip)
	}

	sockSpec, err := loadLbsock()
	if err != nil {
		t.Fatal(err)
	}
	ms, err := h.Layout.OpenPrivate("lb", sockSpec, []string{lbsockMapLb4SockRev})
	if err != nil {
		t.Fatal(err)
	}
	defer pin.CloseAll(ms)
	n, err := pin.DeleteAll[sockKey](ms[lbsockMapLb4SockRev])
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("a TCP connection left %d entries in lb4_sock_rev, want 0", n)
	}
	if got, err := lab.PeerName(conn.(*net.TCPConn)); err != nil || got != vip {
		t.Fatalf("getpeername with the LRU empty: %s (%v), want the VIP %s", got, err, vip)
	}
}

// sockKey is struct lb_sock_key (lb_sock.h).
type sockKey struct {
	Cookie  uint64
	Address uint32
	Port    uint16
	Pad     uint16
}
