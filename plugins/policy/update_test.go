package policy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/netpol"
	"github.com/hotpath/hotpath/core/plugintest"
	"github.com/hotpath/hotpath/lab"
)

func (c *cluster) pod(name string) *pod {
	for _, p := range c.pods {
		if p.name == name {
			return p
		}
	}
	panic("no pod " + name)
}

func (c *cluster) policyDrops(t *testing.T) uint64 {
	return c.h.Metric(t, abi.AbiHpReasonHP_R_POLICY_DENIED, plugintest.Ingress).Packets +
		c.h.Metric(t, abi.AbiHpReasonHP_R_POLICY_DENIED, plugintest.Egress).Packets
}

// TestPrivilegedEstablishedStopsAtNextPacket: a TCP connection carrying data
// is cut by a policy applied while it is established: the first segment
// sent after the apply returned never reaches the server.
func TestPrivilegedEstablishedStopsAtNextPacket(t *testing.T) {
	c := newCluster(t)
	a, b := c.pod("xa"), c.pod("xb")
	ln, err := a.p.NS.Listen("tcp", a.ip.String()+":8080")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var got atomic.Int64
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			got.Add(int64(n))
			if err != nil {
				return
			}
			conn.Write(buf[:n]) // echo: replies flow back while allowed
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := b.p.NS.Dial(ctx, "tcp", a.ip.String()+":8080")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := 0; i < 10; i++ {
		if _, err := conn.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Read(make([]byte, 4)); err != nil {
			t.Fatalf("round %d before the policy: %v", i, err)
		}
	}
	before, drops := got.Load(), c.policyDrops(t)
	c.setPolicies(t, `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: only-80, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - ports: [{port: 80}]
`)
	if _, err := conn.Write([]byte("after")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // several retransmissions
	if n := got.Load(); n != before {
		t.Errorf("server received %d bytes after the deny was applied, want 0", n-before)
	}
	if d := c.policyDrops(t); d <= drops {
		t.Errorf("policy_denied counter did not move (%d -> %d)", drops, d)
	}
	// The same flow becomes usable again once allowed, again within a packet:
	// the retransmission that follows gets through.
	c.setPolicies(t, "")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 5)); err != nil {
		t.Errorf("flow after the policy was removed: %v", err)
	}
}

// udpCounter counts datagrams received per source address on ns:addr.
type udpCounter struct {
	mu  sync.Mutex
	per map[string]int
	pc  net.PacketConn
}

func countUDP(t *testing.T, ns *lab.NS, addr string) *udpCounter {
	pc, err := ns.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	u := &udpCounter{per: map[string]int{}, pc: pc}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			u.mu.Lock()
			u.per[from.(*net.UDPAddr).IP.String()]++
			u.mu.Unlock()
		}
	}()
	return u
}

func (u *udpCounter) from(ip string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.per[ip]
}

// blast sends numbered datagrams from ns to addr every interval until stop,
// and returns how many it sent.
func blast(ns *lab.NS, addr string, interval time.Duration, stop <-chan struct{}) (func() int, error) {
	conn, err := ns.Dial(context.Background(), "udp", addr)
	if err != nil {
		return nil, err
	}
	var sent atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer conn.Close()
		msg := make([]byte, 64)
		for i := uint64(0); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			binary.BigEndian.PutUint64(msg, i)
			if _, err := conn.Write(msg); err == nil {
				sent.Add(1)
			}
			time.Sleep(interval)
		}
	}()
	return func() int { <-done; return int(sent.Load()) }, nil
}

const replaceA = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: to-a, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - podSelector: {matchLabels: {pod: b}}
  - from:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: z}}
      podSelector: {matchLabels: {pod: a}}
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: z}}
      podSelector: {matchLabels: {pod: b}}
    ports: [{port: 80}]
  - from:
    - ipBlock: {cidr: 10.240.2.0/24}
    - ipBlock: {cidr: 10.240.5.0/24}
    ports: [{protocol: UDP, port: 5353}]
`

// replaceB allows the same flows as replaceA, written differently, with
// other prefixes: replacing one by the other exercises every step of commit.
// z/b's UDP flow is allowed by an ipBlock alone in both, so it depends on
// the CIDR identities staying consistent with the rule table throughout.
const replaceB = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: to-a, namespace: x}
spec:
  podSelector: {matchExpressions: [{key: pod, operator: In, values: [a]}]}
  ingress:
  - from:
    - podSelector: {matchExpressions: [{key: pod, operator: NotIn, values: [a, c]}]}
  - from:
    - namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [z]}]}
      podSelector: {matchExpressions: [{key: pod, operator: In, values: [a, b]}]}
    ports: [{port: 79, endPort: 80}]
  - from:
    - ipBlock: {cidr: 10.240.0.0/16, except: [10.240.6.0/24, 10.240.1.0/24]}
    ports: [{protocol: UDP, port: 5353}]
`

// TestPrivilegedReplaceUnderTraffic: 20 TCP streams and a numbered UDP flow
// that both versions of a policy allow, and a UDP flood and TCP connects that
// both deny, while the policy is replaced back and forth 20 times: no
// allowed packet is lost (every datagram arrives, no stream stalls for a
// retransmission timeout), no denied packet gets through.
func TestPrivilegedReplaceUnderTraffic(t *testing.T) {
	c := newCluster(t)
	xa, xb, za, zb, zc := c.pod("xa"), c.pod("xb"), c.pod("za"), c.pod("zb"), c.pod("zc")
	c.setPolicies(t, replaceA)
	udp := countUDP(t, xa.p.NS, xa.ip.String()+":5353")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var streams []*lab.Stream
	for i := 0; i < 20; i++ {
		src := []*pod{xb, za, zb}[i%3]
		s, err := lab.StartStream(ctx, src.p.NS, xa.ip.String()+":80", 512, 5*time.Millisecond)
		if err != nil {
			t.Fatalf("stream %d from %s: %v", i, src.name, err)
		}
		streams = append(streams, s)
	}
	stop := make(chan struct{})
	allowed, err := blast(xb.p.NS, xa.ip.String()+":5353", time.Millisecond, stop)
	if err != nil {
		t.Fatal(err)
	}
	denied, err := blast(zc.p.NS, xa.ip.String()+":5353", time.Millisecond, stop)
	if err != nil {
		t.Fatal(err)
	}
	byCIDR, err := blast(zb.p.NS, xa.ip.String()+":5353", time.Millisecond, stop)
	if err != nil {
		t.Fatal(err)
	}
	var probesPassed atomic.Int64
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			pctx, pcancel := context.WithTimeout(ctx, 300*time.Millisecond)
			if zc.p.NS.Echo(pctx, "tcp", xa.ip.String()+":80", []byte("probe")) == nil {
				probesPassed.Add(1)
			}
			pcancel()
		}
	}()
	for i := 0; i < 20; i++ {
		time.Sleep(50 * time.Millisecond)
		c.apply(t, []string{replaceB, replaceA}[i%2]) // same name: a replace, never a delete
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	sentAllowed, sentDenied, sentCIDR := allowed(), denied(), byCIDR()
	<-probeDone
	for i, s := range streams {
		st := s.Stop()
		if st.Err != nil {
			t.Errorf("stream %d: %v", i, st.Err)
		}
		if st.MaxGap > 150*time.Millisecond {
			t.Errorf("stream %d stalled %v (a drop and retransmission)", i, st.MaxGap)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if p := probesPassed.Load(); p != 0 {
		t.Errorf("%d denied TCP probes connected", p)
	}
	if got := udp.from(xb.ip.String()); got != sentAllowed {
		t.Errorf("allowed UDP flow: %d datagrams sent, %d received", sentAllowed, got)
	}
	if got := udp.from(zb.ip.String()); got != sentCIDR {
		t.Errorf("UDP flow allowed by ipBlock: %d datagrams sent, %d received", sentCIDR, got)
	}
	if got := udp.from(zc.ip.String()); got != 0 || sentDenied == 0 {
		t.Errorf("denied UDP flow: %d datagrams sent, %d received, want 0 received", sentDenied, got)
	}
	t.Logf("20 replaces: allowed UDP %d/%d, denied UDP sent %d received %d, %d denied TCP probes", udp.from(xb.ip.String()), sentAllowed, sentDenied, udp.from(zc.ip.String()), probesPassed.Load())
}

// TestPrivilegedRelatedICMPPasses: x/a may send nothing (egress deny-all),
// yet the port unreachable it answers to a datagram from x/b reaches x/b:
// the ct stage marks it RELATED and policy lets it through.
func TestPrivilegedRelatedICMPPasses(t *testing.T) {
	c := newCluster(t)
	xa, xb := c.pod("xa"), c.pod("xb")
	c.setPolicies(t, `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: no-egress, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
`)
	// Sanity: x/a's own new traffic is denied.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	if err := xa.p.NS.Echo(ctx, "udp", xb.ip.String()+":53", []byte("out")); err == nil {
		t.Fatal("x/a sent a datagram despite egress deny-all")
	}
	cancel()
	conn, err := xb.p.NS.Dial(context.Background(), "udp", xa.ip.String()+":9999") // nothing listens
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := conn.Write([]byte("anyone?")); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Read(make([]byte, 16))
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("read after sending to a closed port: %v, want ECONNREFUSED (the ICMP error passed as RELATED)", err)
	}
}

// TestPrivilegedRelabelUnderTraffic: x/b changes labels 20 times (a new
// identity each time) while it sends to x/a, which admits pod=b: every
// datagram arrives, since the tables in force while the ipcache still holds
// the old identity also judge that one. z/c, never allowed, gets nothing
// through.
func TestPrivilegedRelabelUnderTraffic(t *testing.T) {
	c := newCluster(t)
	xa, xb, zc := c.pod("xa"), c.pod("xb"), c.pod("zc")
	c.setPolicies(t, `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{podSelector: {matchLabels: {pod: b}}}]
    ports: [{protocol: UDP, port: 5353}]
`)
	udp := countUDP(t, xa.p.NS, xa.ip.String()+":5353")
	stop := make(chan struct{})
	allowed, err := blast(xb.p.NS, xa.ip.String()+":5353", time.Millisecond, stop)
	if err != nil {
		t.Fatal(err)
	}
	denied, err := blast(zc.p.NS, xa.ip.String()+":5353", time.Millisecond, stop)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		time.Sleep(40 * time.Millisecond)
		labels := map[string]string{"pod": "b", "rev": fmt.Sprint(i)}
		if _, err := c.store.AddEndpoint(netpol.Endpoint{IP: xb.ip.String(), Namespace: "x", Labels: labels}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	sentAllowed, sentDenied := allowed(), denied()
	time.Sleep(100 * time.Millisecond)
	if got := udp.from(xb.ip.String()); got != sentAllowed {
		t.Errorf("relabelled sender: %d datagrams sent, %d received", sentAllowed, got)
	}
	if got := udp.from(zc.ip.String()); got != 0 || sentDenied == 0 {
		t.Errorf("denied sender: %d sent, %d received, want 0", sentDenied, got)
	}
	eps, err := c.store.Endpoints()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[uint32]bool{}
	for _, e := range eps {
		ids[e.Identity] = true
	}
	if len(ids) != 6 {
		t.Errorf("%d identities for 6 endpoints of 6 label sets: old identities not released", len(ids))
	}
}
