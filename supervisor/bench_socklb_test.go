package supervisor_test

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/lab"
)

// BenchmarkPrivilegedSockLBConnRate measures new TCP connections per second
// (connect, read the greeting, close) from a pod, all in one run and one
// lab: plain routing to the backend before hotpath is attached, then with
// hotpath: through the VIP translated at the socket (socket LB), through the
// VIP per packet (this process outside the cgroup), and to the backend
// directly. Rounds alternate to even out the machine's drift. Each mode
// dials from its own pod: a closed flow's CT entry outlives the client's own
// state, and the same tuple reused by a flow translated the other way would
// meet it. Ad hoc; the bench/ rows are make bench's.
//
//	go test -run '^$' -bench SockLBConnRate -benchtime 1x ./supervisor
func BenchmarkPrivilegedSockLBConnRate(b *testing.B) {
	env := e2e.NewMode(b, true, lab.Options{Pods: []string{"client", "pp", "direct", "dcg", "web1"}})
	// Plain routing: a second lab of the same shape that hotpath never
	// touches, measured in the same rounds.
	bare := lab.NewT(b, lab.Options{Pods: []string{"client", "web1"}, NoOffload: true})
	for _, l := range []*lab.Lab{env.Lab, bare} {
		web := l.Pods["web1"]
		if _, err := lab.ServeName(web.NS, web.IP.String()+":8080", "web1"); err != nil {
			b.Fatal(err)
		}
	}
	client, pp, dpod := env.Lab.Pods["client"], env.Lab.Pods["pp"], env.Lab.Pods["direct"]
	backendAddr := env.Lab.Pods["web1"].IP.String() + ":8080"
	const vip, rounds, phase = "10.96.0.90:80", 15, 700 * time.Millisecond
	env.StartSupervisor(env.PluginFlag("ct"), env.PluginFlag("lb"))
	if _, err := env.CLI("lb", "service", "add", vip+"/tcp", "--backend", backendAddr); err != nil {
		b.Fatal(err)
	}
	var plain, sock, packet, direct, directCg float64
	phases := []func(){
		func() { plain += rate(b, bare.Pods["client"], bare.Pods["web1"].IP.String()+":8080", phase) },
		func() { sock += rate(b, client, vip, phase) },
		func() { env.PerPacket(func() { packet += rate(b, pp, vip, phase) }) },
		func() { env.PerPacket(func() { direct += rate(b, dpod, backendAddr, phase) }) },
		// In the cgroup, not to a VIP: what the hooks cost a connection
		// they leave alone.
		func() { directCg += rate(b, env.Lab.Pods["dcg"], backendAddr, phase) },
	}
	for r := range rounds {
		for i := range phases {
			phases[(i+r)%len(phases)]() // a different mode goes first each round
		}
	}
	plain, sock, packet, direct, directCg = plain/rounds, sock/rounds, packet/rounds, direct/rounds, directCg/rounds
	// What the socket programs themselves cost a connection, timed by the
	// kernel (BPF run-time stats, on only for this last phase).
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Fatal(err)
	}
	rate(b, client, vip, phase)
	for _, point := range []string{"connect4", "getpeername4"} {
		if ns, runs := progRunTime(b, filepath.Join(env.Lab.BPFFS, "links", "cgroup", "lb", point)); runs > 0 {
			b.ReportMetric(ns, point+"-ns/run")
			b.Logf("%s: %d runs, %.0f ns each", point, runs, ns)
		}
	}
	stats.Close()
	b.ReportMetric(plain, "plain-conn/s")
	b.ReportMetric(sock, "socklb-conn/s")
	b.ReportMetric(packet, "perpacket-conn/s")
	b.ReportMetric(direct, "hotpath-direct-conn/s")
	b.ReportMetric(sock/plain, "socklb/plain")
	b.ReportMetric(packet/plain, "perpacket/plain")
	b.Logf("conn/s: plain %.0f, socket LB %.0f (%.2fx), per packet %.0f (%.2fx), to the backend with hotpath %.0f (%.2fx), the same from the cgroup %.0f (%.2fx)",
		plain, sock, sock/plain, packet, packet/plain, direct, direct/plain, directCg, directCg/plain)
}

// progRunTime is the mean run time and run count of the program of the
// pinned link lp, while BPF run-time stats are on.
func progRunTime(b *testing.B, lp string) (float64, uint64) {
	b.Helper()
	l, err := link.LoadPinnedLink(lp, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	li, err := l.Info()
	if err != nil {
		b.Fatal(err)
	}
	p, err := ebpf.NewProgramFromID(li.Program)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	st, err := p.Stats()
	if err != nil {
		b.Fatal(err)
	}
	if st.RunCount == 0 {
		return 0, 0
	}
	return float64(st.Runtime.Nanoseconds()) / float64(st.RunCount), st.RunCount
}

// rate opens connections to addr from pod with 4 workers for d and returns
// connections per second. Each closes with RST so no TIME_WAIT piles up.
func rate(b *testing.B, pod *lab.Pod, addr string, d time.Duration) float64 {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var n atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64)
			for ctx.Err() == nil {
				conn, err := pod.Dial(context.Background(), "tcp", addr)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, err = conn.Read(buf)
				conn.(*net.TCPConn).SetLinger(0)
				conn.Close()
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		b.Fatalf("connections to %s: %v", addr, err)
	}
	return float64(n.Load()) / time.Since(start).Seconds()
}
