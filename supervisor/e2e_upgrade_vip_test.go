package supervisor_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/lab"
)

// udpStream sends a numbered datagram through a UDP VIP every interval and
// counts the datagrams whose answer never came back intact. An answer that
// arrives after its read timed out still counts for its own datagram: on a
// loaded machine a late answer is not a lost one, and it must not be taken
// for the answer of the next datagram.
type udpStream struct {
	conn          net.Conn
	mu            sync.Mutex
	sent          int
	answered      map[int]bool
	stop, stopped chan struct{}
}

func startUDP(t *testing.T, env *e2e.Env, vip string) *udpStream {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := env.Lab.Pods["client"].Dial(ctx, "udp", vip)
	if err != nil {
		t.Fatal(err)
	}
	u := &udpStream{conn: conn, answered: map[int]bool{}, stop: make(chan struct{}), stopped: make(chan struct{})}
	go u.run()
	t.Cleanup(u.Stop)
	return u
}

func (u *udpStream) run() {
	defer close(u.stopped)
	for i := 0; ; i++ {
		select {
		case <-u.stop:
			return
		case <-time.After(10 * time.Millisecond):
		}
		msg := fmt.Sprintf("datagram %d", i)
		u.conn.SetDeadline(time.Now().Add(time.Second))
		if _, err := u.conn.Write([]byte(msg)); err == nil {
			u.await(i)
		}
		// Counted once its wait is over, so counts never sees a datagram
		// still in flight as lost.
		u.mu.Lock()
		u.sent++
		u.mu.Unlock()
	}
}

// await reads answers until the one for datagram i or the deadline,
// recording each intact answer under its own number.
func (u *udpStream) await(i int) {
	buf := make([]byte, 256)
	for {
		n, err := u.conn.Read(buf)
		if err != nil {
			return
		}
		k := bytes.LastIndex(buf[:n], []byte("datagram "))
		if k < 0 {
			continue
		}
		j, err := strconv.Atoi(string(buf[k+len("datagram ") : n]))
		if err != nil {
			continue
		}
		u.mu.Lock()
		u.answered[j] = true
		u.mu.Unlock()
		if j == i {
			return
		}
	}
}

func (u *udpStream) Stop() {
	select {
	case <-u.stop:
	default:
		close(u.stop)
		<-u.stopped
		u.conn.Close()
	}
}

func (u *udpStream) counts() (sent, lost int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.sent, u.sent - len(u.answered)
}

// TestPrivilegedUpgradesUnderVIPTraffic: ten upgrades each of ct and lb,
// alternating two builds, while 20 long-lived TCP connections and a UDP
// stream go through service VIPs. Nothing is lost and nothing is dropped.
func TestPrivilegedUpgradesUnderVIPTraffic(t *testing.T) {
	e2e.Modes(t, upgradesUnderVIPTraffic)
}

func upgradesUnderVIPTraffic(t *testing.T, sockLB bool) {
	env := lbEnvMode(t, sockLB)
	const tcpVIP, udpVIP = "10.96.0.60:80", "10.96.0.60:53"
	args := []string{"lb", "service", "add", tcpVIP + "/tcp", "--algorithm", "maglev"}
	uargs := []string{"lb", "service", "add", udpVIP + "/udp", "--algorithm", "random"}
	for _, w := range webs {
		args = append(args, "--backend", backend(env, w, 1))
		uargs = append(uargs, "--backend", fmt.Sprintf("%s:5353", env.Lab.Pods[w].IP))
	}
	mustCLI(t, env, args...)
	mustCLI(t, env, uargs...)

	streams := make([]*lab.Stream, 20)
	for i := range streams {
		streams[i], _ = vipStream(t, env, tcpVIP)
	}
	udp := startUDP(t, env, udpVIP)
	time.Sleep(300 * time.Millisecond)

	// The CT entry of each connection (client -> backend, after DNAT).
	packets := func() []uint64 {
		recs := env.CT()
		out := make([]uint64, len(streams))
		for i, s := range streams {
			for _, r := range recs {
				// Translated at the socket, the flow is client -> backend
				// from its first packet and carries no rev_nat.
				if r.Proto == "TCP" && r.Direction == "OUT" && r.Src == s.LocalAddr() && (r.RevNat != 0 || env.SockLB) {
					out[i] = r.Packets
				}
			}
			if out[i] == 0 {
				t.Fatalf("no CT entry for connection %d (%s)", i, s.LocalAddr())
			}
		}
		return out
	}
	last := packets()
	builds := map[string][]string{
		"ct": {e2e.Variant(t, "hotpath-ct", ctPkg, "1.1.0-a"), e2e.Variant(t, "hotpath-ct", ctPkg, "1.1.0-b")},
		"lb": {e2e.Variant(t, "hotpath-lb", "github.com/hotpath/hotpath/plugins/lb", "1.1.0-a"), e2e.Variant(t, "hotpath-lb", "github.com/hotpath/hotpath/plugins/lb", "1.1.0-b")},
	}
	var took []time.Duration
	for i := 0; i < 10; i++ {
		for _, name := range []string{"ct", "lb"} {
			res, err := upgrade(env, name, builds[name][i%2], 300*time.Millisecond)
			if err != nil {
				t.Fatalf("upgrade %d of %s: %v", i, name, err)
			}
			took = append(took, res.Duration)
			now := packets()
			for j := range now {
				if now[j] < last[j] {
					t.Fatalf("after upgrade %d of %s: connection %d's CT counter went back %d -> %d", i, name, j, last[j], now[j])
				}
			}
			last = now
		}
	}
	if p := env.PluginStatus("lb"); p.Version != "1.1.0-b" || !p.Healthy {
		t.Errorf("lb after upgrades: %+v", p)
	}
	time.Sleep(300 * time.Millisecond)
	for i, s := range streams {
		if st := s.Stop(); st.Err != nil || st.MaxGap > time.Second {
			t.Errorf("connection %d: %+v", i, st)
		}
	}
	udp.Stop()
	sent, lost := udp.counts()
	if lost != 0 || sent < 100 {
		t.Errorf("UDP through the VIP: %d of %d datagrams lost", lost, sent)
	}
	for _, r := range []abi.Reason{abi.AbiHpReasonHP_R_MISSED_TAIL_CALL, abi.AbiHpReasonHP_R_NO_CONTEXT,
		abi.AbiHpReasonHP_R_PARSE_ERROR, abi.AbiHpReasonHP_R_GEN_MISMATCH, abi.AbiHpReasonHP_R_NO_BACKEND} {
		if n := counter(t, env, r); n != 0 {
			t.Errorf("%d packets dropped as %s", n, abi.ReasonName(r))
		}
	}
	t.Logf("20 upgrades, durations %v; UDP %d datagrams, 0 lost", took, sent)
}
