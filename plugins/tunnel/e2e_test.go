package tunnel_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hotpath/hotpath/core/tunnels"
	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/supervisor"
)

// cluster is two nodes, each with its own supervisor running ct, lb and
// tunnel, and routes to each other's pod CIDR.
type cluster struct {
	m    *lab.Multi
	envs [2]*e2e.Env
}

func newCluster(t *testing.T, pods [2][]string) *cluster {
	t.Helper()
	m, envs := e2e.NewMulti(t, pods)
	c := &cluster{m: m, envs: envs}
	for i, e := range envs {
		tcfg, _ := json.Marshal(map[string]any{"pod_cidrs": []string{m.Nodes[i].PodCIDR().String()}})
		e.WriteConfig(supervisor.Config{
			Tunnel: &supervisor.TunnelConfig{UnderlayDevice: lab.UnderlayDevice},
			Plugins: []supervisor.PluginConfig{
				{Name: "ct", Path: filepath.Join(e.Bin, "hotpath-ct")},
				{Name: "lb", Path: filepath.Join(e.Bin, "hotpath-lb")},
				{Name: "tunnel", Path: filepath.Join(e.Bin, "hotpath-tunnel"), Config: tcfg},
			},
		})
		e.Extra = []string{"--metrics-addr", metricsAddr}
		e.StartSupervisor()
	}
	for i, e := range envs {
		peer := 1 - i
		c.cli(t, i, "tunnel", "add", m.Nodes[peer].PodCIDR().String(), "--remote", m.Underlay[peer].String())
		var rs []tunnels.Route
		e.JSON(&rs, "tunnel", "list", "-o", "json")
		if len(rs) != 1 || rs[0].CIDR != m.Nodes[peer].PodCIDR().String() || rs[0].Remote != m.Underlay[peer].String() || rs[0].VNI != tunnels.DefaultVNI {
			t.Fatalf("node %d: tunnel list %+v", i, rs)
		}
	}
	return c
}

func (c *cluster) cli(t *testing.T, node int, args ...string) string {
	t.Helper()
	out, err := c.envs[node].CLI(args...)
	if err != nil {
		t.Fatalf("node %d: hotpath %s: %v\n%s", node, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestPrivilegedTunnelPodToPod: pods on two nodes reach each other through
// the overlay only (the nodes have no route to each other's pods): TCP with
// 1 and 4 streams whose every byte is checked, UDP, ping; the encapsulation
// counters move on both nodes.
func TestPrivilegedTunnelPodToPod(t *testing.T) {
	c := newCluster(t, [2][]string{{"a"}, {"b"}})
	a, b := c.m.Nodes[0].Pods["a"], c.m.Nodes[1].Pods["b"]
	if _, err := lab.EchoServer(b.NS, addr(b.IP, 7000)); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.UDPEcho(b.NS, addr(b.IP, 7001)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Echo(ctx, "tcp", addr(b.IP, 7000), payload(1<<20)); err != nil {
		t.Fatalf("tcp a -> b, 1 MiB: %v", err)
	}
	if err := a.Echo(ctx, "udp", addr(b.IP, 7001), payload(1200)); err != nil {
		t.Fatalf("udp a -> b: %v", err)
	}
	if err := ping(a.NS, b.IP); err != nil {
		t.Fatalf("ping a -> b: %v", err)
	}
	if err := ping(b.NS, a.IP); err != nil {
		t.Fatalf("ping b -> a: %v", err)
	}
	var streams []*lab.Stream
	for range 4 {
		s, err := lab.StartStream(ctx, a.NS, addr(b.IP, 7000), 16<<10, 0)
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	time.Sleep(2 * time.Second)
	for i, s := range streams {
		st := s.Stop()
		if st.Err != nil || st.Bytes == 0 {
			t.Errorf("stream %d: %d bytes verified, error %v", i, st.Bytes, st.Err)
		}
	}
	for i := range c.envs {
		m := metrics(t, c, i)
		for _, name := range []string{`hotpath_tunnel_packets_total{direction="encap"}`, `hotpath_tunnel_packets_total{direction="decap"}`, `hotpath_tunnel_bytes_total{direction="encap"}`} {
			if m[name] <= 0 {
				t.Errorf("node %d: %s = %v, want > 0", i, name, m[name])
			}
		}
	}
}

// TestPrivilegedTunnelFragNeeded: a datagram with DF larger than the
// overlay's MTU is answered with ICMP fragmentation needed carrying that
// MTU: the sender's connected socket gets EMSGSIZE and learns the path MTU.
func TestPrivilegedTunnelFragNeeded(t *testing.T) {
	c := newCluster(t, [2][]string{{"a"}, {"b"}})
	a, b := c.m.Nodes[0].Pods["a"], c.m.Nodes[1].Pods["b"]
	tooBig(t, a.NS, netip.AddrPortFrom(b.IP, 7002))
	if m := metrics(t, c, 0); m["hotpath_tunnel_frag_needed_total"] < 1 {
		t.Errorf("frag_needed_total = %v, want >= 1", m["hotpath_tunnel_frag_needed_total"])
	}
	// Through a VIP whose backend is on node B: the error is built after
	// DNAT and must reach the socket connected to the VIP (reverse NAT of
	// the ICMP error on its way back to the pod).
	if _, err := lab.UDPEcho(b.NS, addr(b.IP, 7003)); err != nil {
		t.Fatal(err)
	}
	c.cli(t, 0, "lb", "service", "add", "10.96.0.30:53/udp", "--algorithm", "random", "--backend", addr(b.IP, 7003))
	tooBig(t, a.NS, netip.MustParseAddrPort("10.96.0.30:53"))
}

// tooBig sends a datagram with DF too big for the overlay from ns to dst
// on a connected socket and expects EMSGSIZE and the overlay's path MTU
// from the ICMP fragmentation needed that answers it.
func tooBig(t *testing.T, ns *lab.NS, dst netip.AddrPort) {
	t.Helper()
	var fd int
	err := ns.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	// PROBE: DF set, but the route's MTU ignored, so the packet leaves the
	// pod at its device's 1500 bytes, as from a pod that knows no better.
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE); err != nil {
		t.Fatal(err)
	}
	if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: dst.Addr().As4(), Port: int(dst.Port())}); err != nil {
		t.Fatal(err)
	}
	big := payload(1500 - 28)
	var got error
	for i := 0; i < 20 && !errors.Is(got, unix.EMSGSIZE); i++ {
		_, got = unix.Write(fd, big)
		if got == nil {
			time.Sleep(100 * time.Millisecond)
			_, got = unix.Write(fd, big[:10])
		}
	}
	if !errors.Is(got, unix.EMSGSIZE) {
		t.Fatalf("send %d bytes with DF to %s across the overlay: %v, want EMSGSIZE from ICMP fragmentation needed", len(big)+28, dst, got)
	}
	if mtu, err := unix.GetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU); err != nil || mtu != lab.OverlayMTU {
		t.Errorf("path MTU to %s after the ICMP error: %d (%v), want %d", dst, mtu, err, lab.OverlayMTU)
	}
}

// TestPrivilegedTunnelBadRoutes: bad input is refused with a clear error
// and the route table is unchanged.
func TestPrivilegedTunnelBadRoutes(t *testing.T) {
	c := newCluster(t, [2][]string{{"a"}, {"b"}})
	before := c.cli(t, 0, "tunnel", "list", "-o", "json")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"10.250.0.0/33", "--remote", c.m.Underlay[1].String()}, "IPv4 prefix"},
		{[]string{"nonsense", "--remote", c.m.Underlay[1].String()}, "IPv4 prefix"},
		{[]string{"10.240.5.0/24", "--remote", c.m.Underlay[1].String()}, "local pod CIDR"},
		{[]string{"10.250.0.0/16", "--remote", "203.0.113.9"}, "not reachable"},
		{[]string{"10.250.0.0/16", "--remote", c.m.Underlay[0].String()}, "this node"},
		{[]string{"10.250.0.0/16", "--remote", "fe80::1"}, "IPv4"},
		{[]string{"10.250.0.0/16", "--remote", c.m.Underlay[1].String(), "--vni", "16777216"}, "at most"},
	} {
		out, err := c.envs[0].CLI(append([]string{"tunnel", "add"}, tc.args...)...)
		if err == nil || !strings.Contains(fmt.Sprint(err, string(out)), tc.want) {
			t.Errorf("tunnel add %v: %v %s, want an error containing %q", tc.args, err, out, tc.want)
		}
	}
	if out, err := c.envs[0].CLI("tunnel", "del", "10.251.0.0/16"); err == nil || !strings.Contains(fmt.Sprint(err, string(out)), "no such route") {
		t.Errorf("tunnel del of a missing route: %v %s", err, out)
	}
	if after := c.cli(t, 0, "tunnel", "list", "-o", "json"); after != before {
		t.Errorf("routes changed by refused commands:\n%s\nthen\n%s", before, after)
	}
}

func addr(ip netip.Addr, port int) string { return net.JoinHostPort(ip.String(), fmt.Sprint(port)) }

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// ping sends echo requests from ns to dst and waits for one reply.
func ping(ns *lab.NS, dst netip.Addr) error {
	var fd int
	err := ns.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
		return err
	})
	if err != nil {
		return fmt.Errorf("icmp socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(500 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return err
	}
	buf := make([]byte, 1500)
	for seq := 1; seq <= 6; seq++ {
		msg := []byte{8, 0, 0, 0, 0x48, 0x50, 0, byte(seq), 'h', 'p'}
		sum := checksum(msg)
		msg[2], msg[3] = byte(sum>>8), byte(sum)
		if err := unix.Sendto(fd, msg, 0, &unix.SockaddrInet4{Addr: dst.As4()}); err != nil {
			return fmt.Errorf("send echo: %w", err)
		}
		deadline := time.Now().Add(time.Second)
		for time.Now().Before(deadline) {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				if !errors.Is(err, syscall.EAGAIN) {
					return err
				}
				break
			}
			ihl := int(buf[0]&0xf) * 4
			if n >= ihl+8 && buf[ihl] == 0 && buf[ihl+4] == 0x48 && buf[ihl+7] == byte(seq) {
				return nil
			}
		}
	}
	return errors.New("no echo reply")
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

const metricsAddr = "127.0.0.1:9470" // in each node's own namespace

// metrics scrapes node i's supervisor: sample name with labels -> value.
func metrics(t *testing.T, c *cluster, i int) map[string]float64 {
	t.Helper()
	ns := c.m.Nodes[i].Node
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) { return ns.Dial(ctx, network, a) },
	}}
	resp, err := client.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("node %d: scrape: %v", i, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}
