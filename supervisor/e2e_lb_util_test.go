package supervisor_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/core/services"
	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/plugins/lb/maglev"
)

var webs = []string{"web1", "web2", "web3"}

var lbPods = lab.Options{Pods: []string{"client", "web1", "web2", "web3"}}

// lbEnv is a lab with a client and three web pods that answer with their
// name, and a supervisor running the ct and lb plugins (socket LB as
// HOTPATH_SOCKLB says).
func lbEnv(t *testing.T) *e2e.Env {
	return lbStart(t, e2e.NewWith(t, lbPods))
}

// lbEnvMode is lbEnv with socket LB on or off and extra supervisor flags.
func lbEnvMode(t *testing.T, sockLB bool, extra ...string) *e2e.Env {
	env := e2e.NewMode(t, sockLB, lbPods)
	env.Extra = extra
	return lbStart(t, env)
}

// lbStart starts env's supervisor with the ct and lb plugins and the web
// pods' servers.
func lbStart(t *testing.T, env *e2e.Env) *e2e.Env {
	env.StartSupervisor(env.PluginFlag("ct"), env.PluginFlag("lb"))
	for _, w := range webs {
		p := env.Lab.Pods[w]
		if _, err := lab.ServeName(p.NS, p.IP.String()+":8080", w); err != nil {
			t.Fatal(err)
		}
		if _, err := lab.UDPServeName(p.NS, p.IP.String()+":5353", w); err != nil {
			t.Fatal(err)
		}
	}
	return env
}

// backend is "IP:8080,weight=N" of web pod w.
func backend(env *e2e.Env, w string, weight int) string {
	return fmt.Sprintf("%s:8080,weight=%d", env.Lab.Pods[w].IP, weight)
}

// addService adds vip/tcp over the three web pods on port 8080 with the
// given algorithm and weights (1 each when none are given).
func addService(t *testing.T, env *e2e.Env, vip, alg string, weights ...int) {
	t.Helper()
	args := []string{"lb", "service", "add", vip + "/tcp", "--algorithm", alg}
	for i, w := range webs {
		weight := 1
		if i < len(weights) {
			weight = weights[i]
		}
		args = append(args, "--backend", backend(env, w, weight))
	}
	mustCLI(t, env, args...)
}

func mustCLI(t *testing.T, env *e2e.Env, args ...string) string {
	t.Helper()
	out, err := env.CLI(args...)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func listServices(t *testing.T, env *e2e.Env) []services.ServiceInfo {
	var s []services.ServiceInfo
	env.JSON(&s, "lb", "service", "list")
	return s
}

func service(t *testing.T, env *e2e.Env, vip string) services.ServiceInfo {
	t.Helper()
	for _, s := range listServices(t, env) {
		if s.VIP == vip {
			return s
		}
	}
	t.Fatalf("service %s not listed", vip)
	return services.ServiceInfo{}
}

// ask connects from the client to addr (from local port lport, 0: any) and
// returns the name the backend greets with; it closes with RST so the same
// local port can be used again at once.
func ask(ctx context.Context, env *e2e.Env, addr string, lport int) (string, error) {
	client := env.Lab.Pods["client"]
	var conn net.Conn
	err := client.Do(func() error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: client.IP.AsSlice(), Port: lport}, Timeout: 5 * time.Second,
			Control: func(_, _ string, c syscall.RawConn) error {
				var serr error
				c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1) })
				return serr
			}}
		var err error
		conn, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	if err != nil {
		return "", err
	}
	defer func() {
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	}()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	name, err := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(name), err
}

// shares opens n connections to addr with workers in parallel and counts
// the backends that answered.
func shares(t *testing.T, env *e2e.Env, addr string, n int) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var mu sync.Mutex
	counts := map[string]int{}
	jobs := make(chan int)
	var wg sync.WaitGroup
	var firstErr error
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				name, err := ask(ctx, env, addr, 0)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				counts[name]++
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("connection to %s: %v", addr, firstErr)
	}
	return counts
}

// maglevTable reads the live Maglev table of service id from the kernel:
// the lb4_maglev chunks its lb4_services value names, and where they start.
func maglevTable(t *testing.T, env *e2e.Env, id uint32) ([]uint32, uint32) {
	t.Helper()
	l := pin.Layout{Root: env.Lab.BPFFS}
	svcs, err := ebpf.LoadPinnedMap(l.Map(abi.AbiMapLb4Services), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer svcs.Close()
	tables, err := ebpf.LoadPinnedMap(l.Map(abi.AbiMapLb4Maglev), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tables.Close()
	var k abi.LB4Key
	var v, val abi.LB4Service
	for it := svcs.Iterate(); it.Next(&k, &v); {
		if v.SvcId == id {
			val = v
		}
	}
	if val.MaglevOffset == 0 {
		t.Fatalf("service %d has no maglev table", id)
	}
	var table []uint32
	var c abi.MaglevChunk
	for off := val.MaglevOffset; len(table) < int(val.MaglevSize); off++ {
		if err := tables.Lookup(off, &c); err != nil {
			t.Fatal(err)
		}
		table = append(table, c.Backend[:]...)
	}
	return table[:val.MaglevSize], val.MaglevOffset
}

// predict is the backend id the datapath's Maglev lookup gives a TCP tuple.
func predict(table []uint32, client netip.Addr, lport int, vip netip.AddrPort) uint32 {
	c, v := client.As4(), vip.Addr().As4()
	h := maglev.HashTuple(be32(c), be32(v), uint16(lport), vip.Port(), 6, 0)
	return maglev.Lookup(table, h)
}

func be32(b [4]byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// names maps backend ids of a service to web pod names.
func names(env *e2e.Env, s services.ServiceInfo) map[uint32]string {
	out := map[uint32]string{}
	for _, b := range s.Backends {
		for _, w := range webs {
			if strings.HasPrefix(b.Address, env.Lab.Pods[w].IP.String()+":") {
				out[b.ID] = w
			}
		}
	}
	return out
}
