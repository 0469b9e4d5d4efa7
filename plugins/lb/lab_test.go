package lb

import (
	"context"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/core/plugin"
	"github.com/hotpath/hotpath/core/plugintest"
	"github.com/hotpath/hotpath/core/services"
	"github.com/hotpath/hotpath/lab"
)

// TestPrivilegedLBLab sends real TCP and UDP traffic from a pod to service
// VIPs through the entry programs on veths, the lb stages and the ct stage:
// the kernel routes on the translated destination, and the client only ever
// talks to the VIP.
// With socket LB the same traffic is translated at the socket instead, by
// the cgroup programs attached to the lab's cgroup the test process is in.
func TestPrivilegedLBLab(t *testing.T) {
	for _, sock := range []bool{false, true} {
		t.Run(map[bool]string{false: "socklb=off", true: "socklb=on"}[sock], func(t *testing.T) { lbLab(t, sock) })
	}
}

// newLabLB is a lab of pods whose devices run the ct and lb stages, with
// socket LB attached to the lab's cgroup when sock, and the store that
// configures its services.
func newLabLB(t *testing.T, sock bool, pods ...string) (*lab.Lab, *plugintest.Harness, *Store) {
	t.Helper()
	l := lab.NewT(t, lab.Options{Pods: pods, Cgroup: sock})
	h := plugintest.New(t)
	cfg := DefaultConfig()
	progs, release, err := withCT(h.Layout, 1, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	h.Install(t, progs)
	h.AttachLab(t, l)
	if sock {
		attachSock(t, h.Layout, l)
	}
	lbMaps, err := OpenMaps(h.Layout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lbMaps.Close() })
	return l, h, NewStore(lbMaps, cfg)
}

func lbLab(t *testing.T, sock bool) {
	l, h, store := newLabLB(t, sock, "a", "b", "c")
	layout := h.Layout
	b, c := l.Pods["b"], l.Pods["c"]
	for _, p := range []*lab.Pod{b, c} {
		if _, err := lab.ServeName(p.NS, p.IP.String()+":8080", p.Name); err != nil {
			t.Fatal(err)
		}
		if _, err := lab.UDPServeName(p.NS, p.IP.String()+":5353", p.Name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := lab.EchoServer(b.NS, b.IP.String()+":9000"); err != nil {
		t.Fatal(err)
	}
	add := func(vip string, alg string, port string) {
		spec, err := services.ServiceAddArgs{VIP: vip, Algorithm: alg, Backends: backends(b.IP.String()+":"+port, c.IP.String()+":"+port)}.Spec()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Add(spec); err != nil {
			t.Fatal(err)
		}
	}
	add("10.96.0.10:80/tcp", "random", "8080")
	add("10.96.0.53:53/udp", "maglev", "5353")
	echo, _ := services.ServiceAddArgs{VIP: "10.96.0.20:7/tcp", Backends: backends(b.IP.String() + ":9000")}.Spec()
	if _, err := store.Add(echo); err != nil {
		t.Fatal(err)
	}

	a := l.Pods["a"]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, network := range []string{"tcp", "udp"} {
		vip := "10.96.0.10:80"
		if network == "udp" {
			vip = "10.96.0.53:53"
		}
		seen := map[string]int{}
		for range 40 {
			name, err := a.AskName(ctx, network, vip)
			if err != nil {
				t.Fatalf("%s via %s: %v", network, vip, err)
			}
			seen[name]++
		}
		if seen["b"] == 0 || seen["c"] == 0 || len(seen) != 2 {
			t.Errorf("%s connections to %s reached %v, want both b and c", network, vip, seen)
		}
	}
	// Bulk data through the VIP: checksums stay right for large (GSO)
	// segments too.
	payload := make([]byte, 4<<20)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	if err := a.Echo(ctx, "tcp", "10.96.0.20:7", payload); err != nil {
		t.Fatal(err)
	}
	for reason, n := range h.Drops(t) {
		t.Errorf("%d packets dropped for %s", n, reason)
	}
	if sock {
		stats := sockStatsOf(t, layout)
		if stats[SockConnect] < 81 || stats[SockReverse] == 0 {
			t.Errorf("socket LB counters %v: want every connection translated at the socket", stats)
		}
	}
}

// attachSock loads the socket LB programs and attaches them to the lab's
// cgroup, as the supervisor would, and moves this process into it.
func attachSock(t *testing.T, layout pin.Layout, l *lab.Lab) {
	t.Helper()
	pins, err := LoadSock(layout, 1, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for point, path := range pins {
		typ, err := plugin.CgroupAttachType(point)
		if err != nil {
			t.Fatal(err)
		}
		prog, err := ebpf.LoadPinnedProgram(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		lk, err := link.AttachCgroup(link.CgroupOptions{Path: l.Cgroup, Attach: typ, Program: prog})
		prog.Close()
		if err != nil {
			t.Fatalf("attach %s: %v", point, err)
		}
		t.Cleanup(func() { lk.Close() })
	}
	if err := l.EnterCgroup(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.LeaveCgroup() })
}

func sockStatsOf(t *testing.T, layout pin.Layout) map[SockStat]uint64 {
	t.Helper()
	s, err := ReadSockStats(layout)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
