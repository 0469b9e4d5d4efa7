package lb

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/plugintest"
	"github.com/hotpath/hotpath/core/services"
	"github.com/hotpath/hotpath/lab"
)

// TestPrivilegedSockPeerOutlivesTheLRU: a TCP socket translated at
// connect() keeps showing the VIP to getpeername when every entry of the
// lb4_sock_rev LRU is gone (as churn of other connections evicts them): it
// holds its peer itself (lb4_sock_peer), and puts nothing in the LRU.
func TestPrivilegedSockPeerOutlivesTheLRU(t *testing.T) {
	l := lab.NewT(t, lab.Options{Pods: []string{"a", "b"}, Cgroup: true})
	h := plugintest.New(t)
	cfg := DefaultConfig()
	progs, release, err := withCT(h.Layout, 1, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	h.Install(t, progs)
	h.AttachLab(t, l)
	attachSock(t, h.Layout, l)
	lbMaps, err := OpenMaps(h.Layout)
	if err != nil {
		t.Fatal(err)
	}
	defer lbMaps.Close()
	b := l.Pods["b"]
	if _, err := lab.ServeName(b.NS, b.IP.String()+":8080", b.Name); err != nil {
		t.Fatal(err)
	}
	spec, err := services.ServiceAddArgs{VIP: "10.96.0.10:80/tcp", Backends: backends(b.IP.String() + ":8080")}.Spec()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewStore(lbMaps, cfg).Add(spec); err != nil {
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
	if got := peerOf(t, conn.(*net.TCPConn)); got != vip {
		t.Fatalf("getpeername %s, want the VIP %s", got, vip)
	}

	rev := sockRevMap(t, h.Layout.PluginPrivate("lb"))
	defer rev.Close()
	if n := flush(t, rev); n != 0 {
		t.Errorf("a TCP connection left %d entries in lb4_sock_rev, want 0", n)
	}
	if got := peerOf(t, conn.(*net.TCPConn)); got != vip {
		t.Fatalf("getpeername with the LRU empty: %s, want the VIP %s", got, vip)
	}
}

// sockRevMap opens the pinned lb4_sock_rev under dir.
func sockRevMap(t *testing.T, dir string) *ebpf.Map {
	t.Helper()
	m, err := ebpf.LoadPinnedMap(dir+"/"+lbsockMapLb4SockRev, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// flush deletes every entry of m and returns how many there were.
func flush(t *testing.T, m *ebpf.Map) int {
	t.Helper()
	key := make([]byte, m.KeySize())
	var keys [][]byte
	it := m.Iterate()
	val := make([]byte, m.ValueSize())
	for it.Next(&key, &val) {
		keys = append(keys, append([]byte(nil), key...))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			t.Fatal(err)
		}
	}
	return len(keys)
}

// peerOf is getpeername(2) of conn, as the application sees it.
func peerOf(t *testing.T, conn syscall.Conn) netip.AddrPort {
	t.Helper()
	a, err := lab.PeerName(conn)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
