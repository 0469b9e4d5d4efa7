package supervisor_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf/link"

	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/plugins/lb"
)

// sockEnv is lbEnv in socket LB mode, whatever HOTPATH_SOCKLB says.
func sockEnv(t *testing.T, extra ...string) *e2e.Env {
	return lbEnvMode(t, true, extra...)
}

// sockStats reads the socket LB counters from the lb plugin's private map.
func sockStats(t *testing.T, env *e2e.Env) map[lb.SockStat]uint64 {
	t.Helper()
	s, err := lb.ReadSockStats(pin.Layout{Root: env.Lab.BPFFS})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// peerName is getpeername(2) of conn, as the application sees it.
func peerName(t *testing.T, conn syscall.Conn) netip.AddrPort {
	t.Helper()
	a, err := lab.PeerName(conn)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// serviceCT counts CT_SERVICE entries (the per-packet path's record of a
// translated flow) to vip.
func serviceCT(env *e2e.Env, vip string) int {
	n := 0
	for _, r := range env.CT() {
		if r.Direction == "SVC" && r.Dst == vip {
			n++
		}
	}
	return n
}

// TestPrivilegedSockLB: with socket LB on, TCP and UDP (connected and not)
// from a pod in the cgroup to a VIP reach a backend, translated once at the
// socket (no CT_SERVICE entry), while getpeername and recvfrom show the VIP;
// affinity holds; a service without backends refuses the connect; a pod's
// socket outside the cgroup still goes through the per-packet path.
func TestPrivilegedSockLB(t *testing.T) {
	const metricsAddr = "127.0.0.1:9405"
	env := sockEnv(t, "--metrics-addr", metricsAddr)
	const tcpVIP, udpVIP, affVIP, noneVIP = "10.96.0.70:80", "10.96.0.70:53", "10.96.0.71:80", "10.96.0.72:80"
	addService(t, env, tcpVIP, "maglev")
	uargs := []string{"lb", "service", "add", udpVIP + "/udp", "--algorithm", "random"}
	for _, w := range webs {
		uargs = append(uargs, "--backend", fmt.Sprintf("%s:5353", env.Lab.Pods[w].IP))
	}
	mustCLI(t, env, uargs...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := env.Lab.Pods["client"]
	isWeb := func(name string) bool { return strings.HasPrefix(name, "web") }

	// TCP: the backend answers, the application sees the VIP.
	before := sockStats(t, env)
	seen := map[string]bool{}
	for i := 0; i < 30; i++ {
		conn, err := client.Dial(ctx, "tcp", tcpVIP)
		if err != nil {
			t.Fatalf("connect %s: %v", tcpVIP, err)
		}
		if got := peerName(t, conn.(*net.TCPConn)); got.String() != tcpVIP {
			t.Fatalf("getpeername %s, want the VIP %s", got, tcpVIP)
		}
		if got := conn.RemoteAddr().String(); got != tcpVIP {
			t.Fatalf("remote addr %s, want %s", got, tcpVIP)
		}
		name, err := readLine(conn)
		conn.Close()
		if err != nil || !isWeb(name) {
			t.Fatalf("greeting through %s: %q %v", tcpVIP, name, err)
		}
		seen[name] = true
	}
	if len(seen) < 2 {
		t.Errorf("30 maglev connections all reached %v: sockets are not spread", seen)
	}
	if n := serviceCT(env, tcpVIP); n != 0 {
		t.Errorf("%d CT_SERVICE entries for %s: translated per packet too", n, tcpVIP)
	}

	// UDP, connected: getpeername shows the VIP.
	uc, err := client.Dial(ctx, "udp", udpVIP)
	if err != nil {
		t.Fatal(err)
	}
	if got := peerName(t, uc.(*net.UDPConn)); got.String() != udpVIP {
		t.Errorf("udp getpeername %s, want %s", got, udpVIP)
	}
	uc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := uc.Write([]byte("?")); err != nil {
		t.Fatal(err)
	}
	if name, err := readLine(uc); err != nil || !isWeb(name) {
		t.Fatalf("connected udp through %s: %q %v", udpVIP, name, err)
	}
	uc.Close()

	// UDP, unconnected: recvfrom shows the VIP; every datagram of the
	// socket goes to the same backend.
	pc, err := client.ListenPacket("udp", client.IP.String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	dst := net.UDPAddrFromAddrPort(netip.MustParseAddrPort(udpVIP))
	first := ""
	for i := 0; i < 5; i++ {
		pc.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := pc.WriteTo([]byte("?"), dst); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 256)
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("unconnected udp through %s: %v", udpVIP, err)
		}
		if from.String() != udpVIP {
			t.Fatalf("recvfrom %s, want the VIP %s", from, udpVIP)
		}
		name := strings.TrimSpace(string(buf[:n]))
		if first == "" {
			first = name
		} else if name != first {
			t.Fatalf("datagram %d of one socket went to %s, the first to %s", i, name, first)
		}
	}
	after := sockStats(t, env)
	if after[lb.SockConnect]-before[lb.SockConnect] < 31 || after[lb.SockSendmsg]-before[lb.SockSendmsg] < 5 ||
		after[lb.SockReverse] <= before[lb.SockReverse] {
		t.Errorf("socket LB counters %v -> %v: want 31 connects, 5 sendmsgs and reverse translations", before, after)
	}
	body := scrape(t, env, metricsAddr)
	if v := metricValue(t, body, `hotpath_lb_socket_translations_total{hook="connect4"}`); v < 31 {
		t.Errorf("hotpath_lb_socket_translations_total{hook=connect4} %v, want >= 31", v)
	}

	// Affinity: every connection of the pod to the service reaches one backend.
	mustCLI(t, env, "lb", "service", "add", affVIP+"/tcp", "--algorithm", "random", "--affinity-timeout", "60s",
		"--backend", backend(env, "web1", 1), "--backend", backend(env, "web2", 1), "--backend", backend(env, "web3", 1))
	got := map[string]int{}
	for i := 0; i < 20; i++ {
		name, err := askVIP(ctx, client, affVIP)
		if err != nil {
			t.Fatal(err)
		}
		got[name]++
	}
	if len(got) != 1 {
		t.Errorf("affinity: 20 connections reached %v, want one backend", got)
	}

	// No backend: connect and sendto fail at once with ECONNREFUSED.
	mustCLI(t, env, "lb", "service", "add", noneVIP+"/tcp", "--backend", backend(env, "web1", 1))
	mustCLI(t, env, "lb", "backend", "del", noneVIP+"/tcp", env.Lab.Pods["web1"].IP.String()+":8080")
	start := time.Now()
	if _, err := client.Dial(ctx, "tcp", noneVIP); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("connect to a service without backends: %v, want ECONNREFUSED", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("refusal took %v", d)
	}

	// Outside the cgroup the same pod goes through the per-packet path.
	if err := env.Lab.LeaveCgroup(); err != nil {
		t.Fatal(err)
	}
	mid := sockStats(t, env)
	// From a port outside the ephemeral range: a closed flow's CT entry
	// outlives the socket, and this tuple must not be one of the above.
	name, err := ask(ctx, env, tcpVIP, 31999)
	if err != nil || !isWeb(name) {
		t.Fatalf("outside the cgroup: %q %v", name, err)
	}
	if n := serviceCT(env, tcpVIP); n == 0 {
		t.Errorf("outside the cgroup: no CT_SERVICE entry for %s, the per-packet path did not translate", tcpVIP)
	}
	if end := sockStats(t, env); end[lb.SockConnect] != mid[lb.SockConnect] {
		t.Errorf("outside the cgroup: socket LB translated (%d -> %d)", mid[lb.SockConnect], end[lb.SockConnect])
	}
	if err := env.Lab.EnterCgroup(); err != nil {
		t.Fatal(err)
	}
}

// TestPrivilegedSockLBKeepsConnections: TCP streams and a UDP stream
// through VIPs, opened at the socket, stay up without a lost byte while the
// lb plugin is killed with SIGKILL, upgraded (the cgroup programs are
// replaced by a link update), the service swaps maglev -> random and
// lb4_services is resized live; new connections are still translated at the
// socket after each.
func TestPrivilegedSockLBKeepsConnections(t *testing.T) {
	env := sockEnv(t)
	const tcpVIP, udpVIP = "10.96.0.80:80", "10.96.0.80:53"
	addService(t, env, tcpVIP, "maglev")
	uargs := []string{"lb", "service", "add", udpVIP + "/udp"}
	for _, w := range webs {
		uargs = append(uargs, "--backend", fmt.Sprintf("%s:5353", env.Lab.Pods[w].IP))
	}
	mustCLI(t, env, uargs...)
	streams := make([]*lab.Stream, 10)
	for i := range streams {
		streams[i], _ = vipStream(t, env, tcpVIP)
	}
	udp := startUDP(t, env, udpVIP)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := env.Lab.Pods["client"]
	linkPin := filepath.Join(env.Lab.BPFFS, "links", "cgroup", "lb", "connect4")
	progOf := func() uint32 {
		l, err := link.LoadPinnedLink(linkPin, nil)
		if err != nil {
			t.Fatalf("cgroup link: %v", err)
		}
		defer l.Close()
		info, err := l.Info()
		if err != nil {
			t.Fatal(err)
		}
		return uint32(info.Program)
	}
	translated := func(step string) {
		t.Helper()
		before := sockStats(t, env)[lb.SockConnect]
		if name, err := askVIP(ctx, client, tcpVIP); err != nil || !strings.HasPrefix(name, "web") {
			t.Fatalf("%s: new connection: %q %v", step, name, err)
		}
		if after := sockStats(t, env)[lb.SockConnect]; after <= before {
			t.Fatalf("%s: new connection not translated at the socket", step)
		}
	}
	prog0 := progOf()

	lbPid := env.PluginStatus("lb").Pid
	if err := syscall.Kill(lbPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		p := env.PluginStatus("lb")
		if p.Pid != lbPid && p.Pid != 0 && p.Healthy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lb not restarted after SIGKILL: %+v", p)
		}
		time.Sleep(100 * time.Millisecond)
	}
	translated("after kill -9 of lb")

	variant := e2e.Variant(t, "hotpath-lb", "github.com/hotpath/hotpath/plugins/lb", "1.2.0-sock")
	if _, err := upgrade(env, "lb", variant, 300*time.Millisecond); err != nil {
		t.Fatalf("upgrade lb: %v", err)
	}
	if prog1 := progOf(); prog1 == prog0 {
		t.Errorf("upgrade kept cgroup program %d: the link was not updated", prog0)
	}
	translated("after the lb upgrade")

	mustCLI(t, env, "lb", "service", "set-algorithm", tcpVIP+"/tcp", "random")
	translated("after maglev -> random")

	// A live resize of a map the socket programs read: the links move to
	// programs loaded against the new map with the flip, so a service added
	// afterwards (written only to the new map) is translated at the socket.
	prog2 := progOf()
	if _, err := resize(env, "lb4_services", 1<<17); err != nil {
		t.Fatalf("resize lb4_services with socket LB on: %v", err)
	}
	if prog3 := progOf(); prog3 == prog2 {
		t.Errorf("resize kept cgroup program %d: the link still reads the old map", prog2)
	}
	translated("after a resize of lb4_services")
	const lateVIP = "10.96.0.81:80"
	addService(t, env, lateVIP, "maglev")
	before := sockStats(t, env)[lb.SockConnect]
	if name, err := askVIP(ctx, client, lateVIP); err != nil || !strings.HasPrefix(name, "web") {
		t.Fatalf("service added after the resize: %q %v", name, err)
	}
	if after := sockStats(t, env)[lb.SockConnect]; after <= before {
		t.Errorf("service added after the resize not translated at the socket")
	}

	time.Sleep(300 * time.Millisecond)
	for i, s := range streams {
		if st := s.Stop(); st.Err != nil || st.MaxGap > 2*time.Second {
			t.Errorf("connection %d: %+v", i, st)
		}
	}
	udp.Stop()
	if sent, lost := udp.counts(); lost != 0 || sent < 20 {
		t.Errorf("UDP through the VIP: %d of %d datagrams lost", lost, sent)
	}
}

// askVIP connects from pod to addr and returns the backend's greeting.
func askVIP(ctx context.Context, pod *lab.Pod, addr string) (string, error) {
	conn, err := pod.Dial(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return readLine(conn)
}

func readLine(conn net.Conn) (string, error) {
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 256)
	n, err := conn.Read(buf)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(buf[:n])), nil
}

// TestPrivilegedSockLBOutlivesSupervisor: the cgroup links are the
// supervisor's pinned objects: with the supervisor killed, connections are
// still translated at the socket; a new supervisor adopts them; one started
// with socket LB off detaches them, and connections from the same cgroup go
// through the per-packet path again. A stream opened at the start lives
// through all of it.
func TestPrivilegedSockLBOutlivesSupervisor(t *testing.T) {
	env := sockEnv(t)
	const vip = "10.96.0.85:80"
	addService(t, env, vip, "random")
	stream, _ := vipStream(t, env, vip)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	connects := func() uint64 { return sockStats(t, env)[lb.SockConnect] }
	dial := func(step string, lport int) {
		t.Helper()
		name, err := ask(ctx, env, vip, lport)
		if err != nil || !strings.HasPrefix(name, "web") {
			t.Fatalf("%s: connection through %s: %q %v", step, vip, name, err)
		}
	}
	env.Sup.Kill(syscall.SIGKILL)
	if err := env.Sup.Wait(5 * time.Second); err == nil {
		t.Fatal("supervisor survived SIGKILL")
	}
	before := connects()
	dial("supervisor dead", 31001)
	if connects() == before {
		t.Fatal("supervisor dead: the connection was not translated at the socket")
	}

	env.StartSupervisor(env.PluginFlag("ct"), env.PluginFlag("lb"))
	before = connects()
	dial("supervisor back", 31002)
	if connects() == before {
		t.Fatal("supervisor back: the connection was not translated at the socket")
	}

	env.Stop()
	env.SockLB = false // the process stays in the cgroup; the supervisor turns socket LB off
	env.StartSupervisor(env.PluginFlag("ct"), env.PluginFlag("lb"))
	before = connects()
	dial("socket LB off", 31003)
	if connects() != before {
		t.Error("socket LB off: the connection was still translated at the socket")
	}
	if n := serviceCT(env, vip); n == 0 {
		t.Error("socket LB off: no CT_SERVICE entry, the per-packet path did not translate")
	}
	if ents, err := os.ReadDir(filepath.Join(env.Lab.BPFFS, "links", "cgroup", "lb")); err != nil || len(ents) != 0 {
		t.Errorf("socket LB off: cgroup links left %v (%v)", ents, err)
	}
	if st := stream.Stop(); st.Err != nil || st.MaxGap > 3*time.Second {
		t.Errorf("stream through the supervisor's death, return and socket LB off: %+v", st)
	}
}
