package supervisor_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/plugins/ct"
	"github.com/hotpath/hotpath/plugins/lb"
	"github.com/hotpath/hotpath/supervisor"
)

// vipEnv is a lab with a client, a backend "web" (TCP and UDP echo) and a
// backend "far" (TCP echo) whose path from the node has an MTU of 1280, and
// a supervisor running ct (short close lifetime, quick GC) and lb.
func vipEnv(t *testing.T, sockLB bool) *e2e.Env {
	env := e2e.NewMode(t, sockLB, lab.Options{Pods: []string{"client", "web", "far"}})
	cfg := ct.DefaultConfig()
	cfg.Lifetimes.Close = ctmap.Duration(2 * time.Second)
	cfg.GC.Start = ctmap.Duration(time.Second)
	cfg.GC.Min = ctmap.Duration(time.Second)
	cfg.GC.Max = ctmap.Duration(2 * time.Second)
	raw, _ := json.Marshal(cfg)
	// Service entries take their lifetimes from the lb plugin's block.
	lbCfg := lb.DefaultConfig()
	lbCfg.Lifetimes = cfg.Lifetimes
	lbRaw, _ := json.Marshal(lbCfg)
	env.WriteConfig(supervisor.Config{Plugins: []supervisor.PluginConfig{
		{Name: "ct", Path: env.Bin + "/hotpath-ct", Config: raw},
		{Name: "lb", Path: env.Bin + "/hotpath-lb", Config: lbRaw},
	}})
	env.StartSupervisor()
	web, far := env.Lab.Pods["web"], env.Lab.Pods["far"]
	for _, s := range []func() (*lab.Server, error){
		func() (*lab.Server, error) { return lab.EchoServer(web.NS, web.IP.String()+":8080") },
		func() (*lab.Server, error) { return lab.UDPEcho(web.NS, web.IP.String()+":5353") },
		func() (*lab.Server, error) { return lab.EchoServer(far.NS, far.IP.String()+":8080") },
	} {
		if _, err := s(); err != nil {
			t.Fatal(err)
		}
	}
	// Only the node's way to far is narrow: far's own replies are not.
	if out, err := env.Lab.Node.Exec("ip", "route", "replace", far.IP.String()+"/32", "dev", far.HostIf, "mtu", "1280"); err != nil {
		t.Fatalf("narrow the route to far: %v: %s", err, out)
	}
	return env
}

// TestPrivilegedDatapathThroughVIP runs in both socket LB modes: clients
// in the lab's cgroup are translated at the socket, the rest per packet.
func TestPrivilegedDatapathThroughVIP(t *testing.T) {
	e2e.Modes(t, datapathThroughVIP)
}

func datapathThroughVIP(t *testing.T, sockLB bool) {
	env := vipEnv(t, sockLB)
	web, far, client := env.Lab.Pods["web"], env.Lab.Pods["far"], env.Lab.Pods["client"]
	mustCLI(t, env, "lb", "service", "add", "10.96.0.10:80/tcp", "--backend", web.IP.String()+":8080")
	mustCLI(t, env, "lb", "service", "add", "10.96.0.53:53/udp", "--backend", web.IP.String()+":5353")
	mustCLI(t, env, "lb", "service", "add", "10.96.0.54:53/udp", "--backend", web.IP.String()+":5999") // closed port
	mustCLI(t, env, "lb", "service", "add", "10.96.0.11:80/tcp", "--backend", far.IP.String()+":8080")
	mustCLI(t, env, "lb", "service", "add", "10.96.0.12:80/tcp")
	mustCLI(t, env, "lb", "service", "add", "10.96.0.55:53/udp")

	t.Run("closed connections expire within the close lifetime", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		srcs := map[string]bool{}
		for i := 0; i < 50; i++ {
			c, err := client.Dial(ctx, "tcp", "10.96.0.10:80")
			if err != nil {
				t.Fatal(err)
			}
			msg := []byte(fmt.Sprintf("hello %d", i))
			c.Write(msg)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := readFull(c, make([]byte, len(msg))); err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			srcs[c.LocalAddr().String()] = true
			c.Close() // FIN from the client; the echo server closes its side at EOF
		}
		ours := func(recs []ctmap.Record) (svc, other []ctmap.Record) {
			for _, r := range recs {
				if r.Proto == "TCP" && srcs[r.Src] {
					if r.Direction == "SVC" {
						svc = append(svc, r)
					} else {
						other = append(other, r)
					}
				}
			}
			return
		}
		// Right after the closes: every service entry is dead (both
		// closing flags) with at most the close lifetime left.
		time.Sleep(500 * time.Millisecond)
		svc, _ := ours(env.CT())
		for _, r := range svc {
			if !has(r.Flags, "TxClosing") || !has(r.Flags, "RxClosing") || r.Expires > 2 {
				t.Fatalf("closed connection's service entry %s -> %s: flags %v, expires in %ds, want both closing and <= 2s",
					r.Src, r.Dst, r.Flags, r.Expires)
			}
		}
		// Close lifetime 2s, GC every 1-2s: all gone well within 10s.
		waitFor(t, "GC to remove every entry of the closed connections", 10*time.Second, func() bool {
			svc, other := ours(env.CT())
			return len(svc) == 0 && len(other) == 0
		})
	})

	t.Run("UDP client gets ECONNREFUSED through a VIP", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := client.Dial(ctx, "udp", "10.96.0.54:53")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("anyone?")); err != nil {
			t.Fatal(err)
		}
		_, err = c.Read(make([]byte, 100))
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("read after sending to a closed port behind a VIP: %v, want ECONNREFUSED", err)
		}
		if n := counter(t, env, abi.AbiHpReasonHP_R_ICMP_RELATED); n == 0 {
			t.Fatal("no ICMP error counted as related")
		}
	})

	t.Run("time exceeded on the way to the backend reaches the client about the VIP", func(t *testing.T) {
		// TTL 1: this node's forwarding answers with time exceeded, quoting
		// the datagram after DNAT; with IP_RECVERR the socket reports it.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := client.Dial(ctx, "udp", "10.96.0.53:53")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		raw, err := c.(*net.UDPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var serr error
		raw.Control(func(fd uintptr) {
			if serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_RECVERR, 1); serr == nil {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_TTL, 1)
			}
		})
		if serr != nil {
			t.Fatal(serr)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("short-lived")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(make([]byte, 100)); !errors.Is(err, syscall.EHOSTUNREACH) {
			t.Fatalf("read after a TTL-1 datagram to a VIP: %v, want EHOSTUNREACH from time exceeded", err)
		}
	})

	t.Run("fragmented UDP datagrams through a VIP are answered", func(t *testing.T) {
		before := counter(t, env, abi.AbiHpReasonHP_R_FRAGMENT)
		beforeEgress := counterDir(t, env, abi.AbiHpReasonHP_R_FRAGMENT, 1)
		for _, size := range []int{4 << 10, 32 << 10} {
			payload := make([]byte, size)
			rand.Read(payload)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := client.Echo(ctx, "udp", "10.96.0.53:53", payload)
			cancel()
			if err != nil {
				t.Fatalf("%d-byte datagram: %v", size, err)
			}
		}
		// 4 KiB: 3 fragments, 32 KiB: 23; each way, once: at the ingress
		// hook where it enters the node, never again where it leaves.
		if got := counter(t, env, abi.AbiHpReasonHP_R_FRAGMENT) - before; got < 2*(3+23) {
			t.Fatalf("%d fragments counted, want at least %d", got, 2*(3+23))
		}
		if got := counterDir(t, env, abi.AbiHpReasonHP_R_FRAGMENT, 1) - beforeEgress; got != 0 {
			t.Fatalf("%d fragments counted again at an egress hook, want 0 (one pass per node)", got)
		}
		if n := counter(t, env, abi.AbiHpReasonHP_R_FRAG_NOT_FOUND); n != 0 {
			t.Fatalf("%d fragments dropped without their first", n)
		}
	})

	t.Run("TCP through a VIP behind a lower MTU gets fragmentation needed and completes", func(t *testing.T) {
		payload := make([]byte, 512<<10)
		rand.Read(payload)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := client.Echo(ctx, "tcp", "10.96.0.11:80", payload); err != nil {
			t.Fatalf("echo through the narrow path: %v", err)
		}
		// The client learnt the path MTU of the VIP (not of the backend,
		// whose address it never saw). Translated at the socket, it talks
		// to the backend's address from the start, and learns that one's.
		dst := "10.96.0.11"
		if env.SockLB {
			dst = far.IP.String()
		}
		out, err := client.Exec("ip", "route", "get", dst)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), "mtu 1280") {
			t.Fatalf("client's route to the VIP has no learnt MTU: %s", out)
		}
	})

	t.Run("a VIP without backends rejects at once", func(t *testing.T) {
		before := counter(t, env, abi.AbiHpReasonHP_R_REJECT)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		_, err := client.Dial(ctx, "tcp", "10.96.0.12:80")
		if !errors.Is(err, syscall.ECONNREFUSED) || time.Since(start) > 2*time.Second {
			t.Fatalf("connect to a VIP without backends: %v after %s, want ECONNREFUSED at once", err, time.Since(start))
		}
		if env.SockLB {
			// Refused at the socket, before any packet: UDP's connect
			// fails too, and the per-packet path rejects nothing.
			if _, err := client.Dial(ctx, "udp", "10.96.0.55:53"); !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("UDP connect to a VIP without backends: %v, want ECONNREFUSED", err)
			}
			if got := counter(t, env, abi.AbiHpReasonHP_R_REJECT) - before; got != 0 {
				t.Fatalf("reject counted %d per packet, want 0 with socket LB", got)
			}
			return
		}
		c, err := client.Dial(ctx, "udp", "10.96.0.55:53")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte("anyone?"))
		if _, err := c.Read(make([]byte, 100)); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("UDP to a VIP without backends: %v, want ECONNREFUSED", err)
		}
		if got := counter(t, env, abi.AbiHpReasonHP_R_REJECT) - before; got != 2 {
			t.Fatalf("reject counted %d, want 2", got)
		}
	})

	if n := counter(t, env, abi.AbiHpReasonHP_R_PARSE_ERROR); n != 0 {
		t.Errorf("%d parse errors", n)
	}
}
