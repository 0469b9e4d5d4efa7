package nat_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/lab"
)

// TestPrivilegedMasqueradeTCPUDPPing: an external server sees the node's
// address for TCP, UDP and ping from two pods; replies reach the pod; an
// ICMP error about a masqueraded flow reaches the pod; replies never show
// up in CT as new connections to the node.
func TestPrivilegedMasqueradeTCPUDPPing(t *testing.T) {
	env := natEnv(t, nil, "", "a", "b")
	x := env.Lab.External
	if _, err := lab.ServePeer(x, ext(8080)); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.UDPServePeer(x, ext(8081)); err != nil {
		t.Fatal(err)
	}
	a, b := env.Lab.Pods["a"], env.Lab.Pods["b"]

	// Without masquerade the external side has no way back to a pod.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	if _, err := ask(ctx, a.NS, "tcp", ext(8080)); err == nil {
		t.Fatal("a pod reached the external namespace before masquerade was on: the lab routes back")
	}
	cancel()

	metricsAddr := "127.0.0.1:9403"
	env.Extra = append(env.Extra, "--metrics-addr", metricsAddr)
	env.StartSupervisor()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, pod := range []*lab.Pod{a, b} {
		for _, network := range []string{"tcp", "udp"} {
			port := 8080
			if network == "udp" {
				port = 8081
			}
			seen, err := ask(ctx, pod.NS, network, ext(port))
			if err != nil {
				t.Fatalf("%s from pod %s: %v", network, pod.Name, err)
			}
			if seen.Addr() != lab.UplinkIP || !inRange(seen.Port(), 32768, 60999) {
				t.Errorf("%s from pod %s: server saw %s, want %s:32768-60999", network, pod.Name, seen, lab.UplinkIP)
			}
		}
	}

	srcs := icmpSources(t, x)
	for i, pod := range []*lab.Pod{a, b} {
		if err := ping(pod.NS, lab.ExternalIP, uint16(0x4242+i)); err != nil {
			t.Fatalf("ping from pod %s: %v", pod.Name, err)
		}
	}
	if got := srcs(); len(got) == 0 || strings.Join(got, ",") != strings.Repeat(lab.UplinkIP.String()+",", len(got)-1)+lab.UplinkIP.String() {
		t.Errorf("echo requests arrived from %v, want only %s", got, lab.UplinkIP)
	}

	// A UDP datagram to a closed port: the external kernel answers with
	// port unreachable to the node's address, which must reach the pod's
	// connected socket as ECONNREFUSED.
	c, err := a.NS.Dial(ctx, "udp", ext(9))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	var rerr error
	for i := 0; i < 3 && !errors.Is(rerr, syscall.ECONNREFUSED); i++ {
		c.Write([]byte("x"))
		_, rerr = c.Read(make([]byte, 16))
	}
	if !errors.Is(rerr, syscall.ECONNREFUSED) {
		t.Errorf("udp to a closed external port: %v, want connection refused (ICMP error translated back)", rerr)
	}

	recs := natList(t, env)
	protos := map[string]int{}
	for _, r := range recs {
		protos[r.Proto]++
		if !strings.HasPrefix(r.NatSrc, lab.UplinkIP.String()+":") || !strings.HasPrefix(r.Src, "10.240.") || r.Expires <= 0 {
			t.Errorf("nat list entry %+v", r)
		}
	}
	if protos["TCP"] < 2 || protos["UDP"] < 3 || protos["ICMP"] < 2 {
		t.Errorf("nat list has %v flows by protocol, want >= 2 TCP, 3 UDP, 2 ICMP: %+v", protos, recs)
	}
	for _, r := range env.CT() {
		if strings.HasPrefix(r.Src, lab.ExternalIP.String()) && strings.HasPrefix(r.Dst, lab.UplinkIP.String()) {
			t.Errorf("a reply was tracked as a new connection to the node: %+v", r)
		}
	}
	st := natStats(t, env)
	if st.Allocations < 7 || st.ICMPErrors < 1 || st.Exhausted != 0 || st.Mappings < 7 {
		t.Errorf("nat stats %+v", st)
	}
	if n := dropped(t, env, abi.AbiHpReasonHP_R_NAT_EXHAUSTED); n != 0 {
		t.Errorf("%d exhaustion drops", n)
	}
	body := scrape(t, env.Lab.Node, metricsAddr)
	for _, series := range []string{"hotpath_nat_mappings", "hotpath_nat_allocations_total", "hotpath_nat_collisions_total",
		"hotpath_nat_exhaustion_drops_total", "hotpath_nat_orphans_purged_total"} {
		if !regexp.MustCompile(`(?m)^` + series + `(\{[^}]*\})? [0-9.e+]+$`).MatchString(body) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	if !regexp.MustCompile(`(?m)^hotpath_nat_allocations_total(\{[^}]*\})? ([1-9][0-9]*)$`).MatchString(body) {
		t.Errorf("hotpath_nat_allocations_total is not positive")
	}
	if out, err := env.CLI("nat", "flush"); err != nil || !strings.Contains(string(out), "flushed") {
		t.Errorf("nat flush: %s %v", out, err)
	}
	if recs := natList(t, env); len(recs) != 0 {
		t.Errorf("%d mappings after flush", len(recs))
	}
}

// icmpSources opens a raw ICMP socket in ns and returns a function that
// lists the source addresses of the echo requests it has seen so far.
func icmpSources(t *testing.T, ns *lab.NS) func() []string {
	t.Helper()
	var fd int
	err := ns.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK, unix.IPPROTO_ICMP)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return func() []string {
		var out []string
		buf := make([]byte, 2048)
		for {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				return out
			}
			ihl := int(buf[0]&0xf) * 4
			if n > ihl && buf[ihl] == 8 { // echo request
				out = append(out, net.IP(buf[12:16]).String())
			}
		}
	}
}

// ping sends ICMP echo requests with identifier id from ns to dst through a
// raw socket and waits for a matching echo reply.
func ping(ns *lab.NS, dst netip.Addr, id uint16) error {
	var fd int
	err := ns.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
		return err
	})
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(500 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return err
	}
	to := &unix.SockaddrInet4{Addr: dst.As4()}
	buf := make([]byte, 2048)
	for seq := uint16(1); seq <= 4; seq++ {
		msg := []byte{8, 0, 0, 0, byte(id >> 8), byte(id), byte(seq >> 8), byte(seq), 'h', 'p'}
		sum := icmpChecksum(msg)
		msg[2], msg[3] = byte(sum>>8), byte(sum)
		if err := unix.Sendto(fd, msg, 0, to); err != nil {
			return fmt.Errorf("send echo: %w", err)
		}
		deadline := time.Now().Add(time.Second)
		for time.Now().Before(deadline) {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				break
			}
			ihl := int(buf[0]&0xf) * 4
			if n >= ihl+8 && buf[ihl] == 0 && uint16(buf[ihl+4])<<8|uint16(buf[ihl+5]) == id {
				return nil
			}
		}
	}
	return fmt.Errorf("no echo reply from %s with identifier %d", dst, id)
}

func icmpChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// scrape fetches /metrics from inside the node namespace.
func scrape(t *testing.T, ns *lab.NS, addr string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) { return ns.Dial(ctx, network, a) },
	}}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
