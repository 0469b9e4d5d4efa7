package supervisor_test

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/plugins/ct"
	"github.com/hotpath/hotpath/supervisor"
)

// shortCT is a ct config with lifetimes short enough for a test to watch GC.
func shortCT(env *e2e.Env) {
	cfg := ct.DefaultConfig()
	cfg.Lifetimes.Close = ctmap.Duration(2 * time.Second)
	cfg.Lifetimes.NonTCP = ctmap.Duration(3 * time.Second)
	cfg.GC.Start = ctmap.Duration(time.Second)
	cfg.GC.Min = ctmap.Duration(time.Second)
	cfg.GC.Max = ctmap.Duration(2 * time.Second)
	raw, _ := json.Marshal(cfg)
	env.WriteConfig(supervisor.Config{Plugins: []supervisor.PluginConfig{{Name: "ct", Path: env.Bin + "/hotpath-ct", Config: raw}}})
}

func find(recs []ctmap.Record, proto, dir, src, dst string) *ctmap.Record {
	for i := range recs {
		r := &recs[i]
		if r.Proto == proto && r.Direction == dir && r.Src == src && r.Dst == dst {
			return r
		}
	}
	return nil
}

func has(flags []string, f string) bool {
	for _, x := range flags {
		if x == f {
			return true
		}
	}
	return false
}

func tcpInfo(t *testing.T, c net.Conn) *unix.TCPInfo {
	t.Helper()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	var serr error
	raw.Control(func(fd uintptr) { info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	if serr != nil {
		t.Fatal(serr)
	}
	return info
}

func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

func TestPrivilegedSupervisorCTEntries(t *testing.T) {
	env := e2e.New(t, "a", "b")
	shortCT(env)
	env.StartSupervisor()
	a, b := env.Lab.Pods["a"], env.Lab.Pods["b"]
	srvAddr := b.IP.String() + ":8080"
	if _, err := lab.EchoServer(b.NS, srvAddr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// TCP: ten 1000-byte round trips, then compare the CT counters with what
	// the client's socket says it sent and received.
	conn, err := a.Dial(ctx, "tcp", srvAddr)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1000)
	for i := 0; i < 10; i++ {
		if _, err := conn.Write(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := readFull(conn, buf); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond) // let delayed ACKs go out
	info := tcpInfo(t, conn)
	segs := uint64(info.Segs_in) + uint64(info.Segs_out)
	src := conn.LocalAddr().String()

	// One pass per node: one OUT entry, created where the client's packets
	// enter the node and found as REPLY where the server's do; no IN
	// entry at the server's device any more.
	recs := env.CT()
	out := find(recs, "TCP", "OUT", src, srvAddr)
	if out == nil || find(recs, "TCP", "IN", src, srvAddr) != nil {
		t.Fatalf("want one OUT entry and no IN entry for %s -> %s, have %+v", src, srvAddr, recs)
	}
	for _, r := range []*ctmap.Record{out} {
		if r.Packets != segs {
			t.Errorf("%s entry counted %d packets, the socket saw %d segments", r.Direction, r.Packets, segs)
		}
		// skb->len at tc: 14 (Ethernet) + IP total length; 20000 payload bytes.
		if min, max := 20000+segs*(14+20+20), 20000+segs*(14+20+60); r.Bytes < min || r.Bytes > max {
			t.Errorf("%s entry counted %d bytes, want %d..%d", r.Direction, r.Bytes, min, max)
		}
		if !has(r.Flags, "SeenNonSyn") || has(r.Flags, "TxClosing") || has(r.Flags, "RxClosing") {
			t.Errorf("%s entry flags %v, want SeenNonSyn only", r.Direction, r.Flags)
		}
		if r.Expires < 21500 {
			t.Errorf("%s entry expires in %ds, want ~21600", r.Direction, r.Expires)
		}
	}
	if table, err := env.CLI("ct", "list"); err != nil || !strings.Contains(string(table), "TCP OUT "+src+" -> "+srvAddr) {
		t.Errorf("table form lacks the OUT entry (err %v):\n%s", err, table)
	}

	// FIN both ways: both closing flags, close lifetime, then GC removes it.
	conn.Close()
	waitFor(t, "both closing flags", 5*time.Second, func() bool {
		r := find(env.CT(), "TCP", "OUT", src, srvAddr)
		return r != nil && has(r.Flags, "TxClosing") && has(r.Flags, "RxClosing") && r.Expires <= 2
	})
	waitFor(t, "GC to remove the closed connection", 10*time.Second, func() bool {
		recs := env.CT()
		return find(recs, "TCP", "OUT", src, srvAddr) == nil && find(recs, "TCP", "IN", src, srvAddr) == nil
	})

	// RST: an abortive close sets both closing flags at once.
	rconn, err := a.Dial(ctx, "tcp", srvAddr)
	if err != nil {
		t.Fatal(err)
	}
	rsrc := rconn.LocalAddr().String()
	rconn.Write([]byte("x"))
	readFull(rconn, buf[:1])
	rconn.(*net.TCPConn).SetLinger(0)
	rconn.Close()
	waitFor(t, "closing flags after RST", 5*time.Second, func() bool {
		r := find(env.CT(), "TCP", "OUT", rsrc, srvAddr)
		return r != nil && has(r.Flags, "TxClosing") && has(r.Flags, "RxClosing")
	})

	// UDP lands in ct_any4 and expires after the non-TCP lifetime.
	udpAddr := b.IP.String() + ":5353"
	if _, err := lab.UDPEcho(b.NS, udpAddr); err != nil {
		t.Fatal(err)
	}
	if err := a.Echo(ctx, "udp", udpAddr, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	var udp *ctmap.Record
	for _, r := range env.CT() {
		if r.Proto == "UDP" && r.Direction == "OUT" && r.Dst == udpAddr {
			udp = &r
		}
	}
	if udp == nil || udp.Map != "ct_any4" || udp.Packets != 2 {
		t.Fatalf("UDP entry %+v, want one in ct_any4 with 2 packets", udp)
	}
	waitFor(t, "GC to remove the expired UDP entry", 10*time.Second, func() bool {
		for _, r := range env.CT() {
			if r.Proto == "UDP" && r.Dst == udpAddr {
				return false
			}
		}
		return true
	})
	if ps := env.PluginStatus("ct"); !ps.Healthy || !ps.GCLease || ps.Restarts != 0 {
		t.Errorf("ct plugin status %+v", ps)
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
