package lb

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/core/plugintest/packet"
	"github.com/hotpath/hotpath/core/services"
	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/plugins/lb/maglev"
)

// goChoice is the backend the Go builder's table gives a TCP flow from src
// to a listed Maglev service.
func goChoice(t testing.TB, s services.ServiceInfo, src netip.AddrPort) netip.AddrPort {
	t.Helper()
	var mb []maglev.Backend
	addrOf := map[uint32]netip.AddrPort{}
	for _, b := range s.Backends {
		mb = append(mb, maglev.Backend{ID: b.ID, Key: b.Address, Weight: uint32(b.Weight)})
		addrOf[b.ID] = ap(b.Address)
	}
	table, err := maglev.Build(mb, s.MaglevTableSize, testSeed)
	if err != nil {
		t.Fatal(err)
	}
	vip := netip.MustParseAddrPort(s.VIP[:len(s.VIP)-len("/tcp")])
	s4, d4 := src.Addr().As4(), vip.Addr().As4()
	h := maglev.HashTuple(binary.BigEndian.Uint32(s4[:]), binary.BigEndian.Uint32(d4[:]), src.Port(), vip.Port(), packet.ProtoTCP, testSeed)
	return addrOf[maglev.Lookup(table, h)]
}

// synTo sends a new flow's SYN from src to vip and returns where the
// datapath translated it to.
func (h *lbHarness) synTo(t testing.TB, src, vip netip.AddrPort) netip.AddrPort {
	t.Helper()
	_, dst := packet.Addrs(h.run(t, in, packet.TCP(src, vip, packet.SYN, nil)).Packet)
	return dst
}

func flowSrc(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(1 + i%250)}), uint16(20000+i))
}

// A backend change of one Maglev service writes its new table elsewhere
// and leaves every other service's table and packets alone; its own new
// flows move only where the new table differs (about 1/N).
func TestPrivilegedLBMaglevChangeLeavesOthersAlone(t *testing.T) {
	h := newLB(t)
	a := h.add(t, services.ServiceAddArgs{VIP: "10.96.0.10:80/tcp", Algorithm: "maglev", MaglevTableSize: 1021,
		Backends: backends("10.240.1.1:80", "10.240.1.2:80", "10.240.1.3:80", "10.240.1.4:80")})
	b := h.add(t, services.ServiceAddArgs{VIP: "10.96.0.11:80/tcp", Algorithm: "maglev", MaglevTableSize: 1021,
		Backends: backends("10.240.2.1:80", "10.240.2.2:80", "10.240.2.3:80")})
	vipA, vipB := ap("10.96.0.10:80"), ap("10.96.0.11:80")
	tableB, offB, err := h.store.Table(mustVIP(t, b.VIP))
	if err != nil {
		t.Fatal(err)
	}
	const flows = 400
	beforeA, beforeB := make([]netip.AddrPort, flows), make([]netip.AddrPort, flows)
	for i := range flows {
		beforeA[i], beforeB[i] = h.synTo(t, flowSrc(i), vipA), h.synTo(t, flowSrc(i), vipB)
		if want := goChoice(t, b, flowSrc(i)); beforeB[i] != want {
			t.Fatalf("flow %d to B went to %s, Go table says %s", i, beforeB[i], want)
		}
	}

	h.invoke(t, "backend-del", services.BackendArgs{VIP: a.VIP, Backend: services.BackendArg{Address: "10.240.1.4:80"}})
	a = h.service(t, a.VIP)
	if again, off, err := h.store.Table(mustVIP(t, b.VIP)); err != nil || off != offB || !slices.Equal(again, tableB) {
		t.Fatalf("B's table moved or changed with A's backends (chunk %d -> %d, %v)", offB, off, err)
	}
	moved := 0
	for i := range flows {
		// New flows (other ports): CT entries of the first round would
		// keep their backends anyway.
		src := flowSrc(i)
		src = netip.AddrPortFrom(src.Addr(), src.Port()+10000)
		if got, want := h.synTo(t, src, vipB), goChoice(t, b, src); got != want {
			t.Fatalf("after A's change, flow %d to B went to %s, its table says %s", i, got, want)
		}
		got := h.synTo(t, src, vipA)
		if want := goChoice(t, a, src); got != want {
			t.Fatalf("after the change, flow %d to A went to %s, A's new table says %s", i, got, want)
		}
		if got.String() == "10.240.1.4:80" {
			t.Fatalf("flow %d to A reached the removed backend", i)
		}
	}
	// Established flows keep their backends (CT_SERVICE); B's too.
	for i := range flows {
		if got := h.synTo(t, flowSrc(i), vipB); got != beforeB[i] {
			t.Fatalf("established flow %d to B moved %s -> %s", i, beforeB[i], got)
		}
		if beforeA[i].String() != "10.240.1.4:80" && h.synTo(t, flowSrc(i), vipA) != beforeA[i] {
			moved++
		}
	}
	if moved != 0 {
		t.Errorf("%d established flows to A on remaining backends moved", moved)
	}
}

// A table that does not fit lb4_maglev is refused with a clear error and
// changes nothing; room freed by a deleted service is used again after a
// grace period.
func TestPrivilegedLBMaglevTablesFull(t *testing.T) {
	h := newLB(t)
	specs, err := pin.SharedSpecs()
	if err != nil {
		t.Fatal(err)
	}
	spec := specs[abi.AbiMapLb4Maglev].Copy()
	spec.MaxEntries = 1 + 2*chunksFor(16381) + 100 // two default tables and a little
	small, err := ebpf.NewMap(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	ms := *h.maps
	ms.Maglev = small
	store := NewStore(&ms, h.cfg)
	add := func(vip string) error {
		_, err := Run(store, "service-add", mustJSON(t, svcArgs(vip, "maglev", "10.240.1.1:80", "10.240.1.2:80")))
		return err
	}
	for _, vip := range []string{"10.96.0.1:80/tcp", "10.96.0.2:80/tcp"} {
		if err := add(vip); err != nil {
			t.Fatal(err)
		}
	}
	snap := func() string {
		all, err := store.List()
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(mapCounts(t, &ms), all)
	}
	before := snap()
	err = add("10.96.0.3:80/tcp")
	if !errors.Is(err, ErrTablesFull) {
		t.Fatalf("third table: %v, want %v", err, ErrTablesFull)
	}
	t.Logf("third table: %v", err)
	if err := store.AddBackend(mustVIP(t, "10.96.0.1:80/tcp"), services.Backend{Addr: ap("10.240.1.3:80"), Weight: 1}); !errors.Is(err, ErrTablesFull) {
		t.Fatalf("a backend change needing a new table: %v, want %v", err, ErrTablesFull)
	}
	if after := snap(); after != before {
		t.Fatalf("refused commands changed the maps:\n%s\nwas\n%s", after, before)
	}
	if err := store.Del(mustVIP(t, "10.96.0.2:80/tcp")); err != nil {
		t.Fatal(err)
	}
	if err := add("10.96.0.3:80/tcp"); err != nil {
		t.Fatalf("after a delete: %v", err)
	}
}

// TestPrivilegedLBMaglevThousandServices configures 1000 Maglev services
// (M=16381, 3 backends each) in one service-apply, changes one service's
// backends, and sends real TCP through a few of them. The bounds are loose
// (a loaded 2-CPU machine); `make bench` measures the real numbers.
func TestPrivilegedLBMaglevThousandServices(t *testing.T) {
	l := lab.NewT(t, lab.Options{Pods: []string{"a", "b", "c"}})
	h := newLB(t)
	h.AttachLab(t, l)
	b, c := l.Pods["b"], l.Pods["c"]
	for _, p := range []*lab.Pod{b, c} {
		for _, port := range []string{"8080", "8081"} {
			if _, err := lab.ServeName(p.NS, p.IP.String()+":"+port, p.Name); err != nil {
				t.Fatal(err)
			}
		}
	}
	const n = 1000
	set := make([]services.ServiceAddArgs, n)
	for i := range set {
		set[i] = svcArgs(fmt.Sprintf("10.97.%d.%d:80/tcp", i/200, 1+i%200), "maglev",
			b.IP.String()+":8080", c.IP.String()+":8080", b.IP.String()+":8081")
	}
	start := time.Now()
	h.invoke(t, "service-apply", set)
	took := time.Since(start)
	t.Logf("%d maglev services (M=16381, 3 backends) applied in %v", n, took)
	if took > 15*time.Second {
		t.Errorf("applying %d maglev services took %v", n, took)
	}

	last := set[n-1].VIP
	start = time.Now()
	h.invoke(t, "backend-add", services.BackendArgs{VIP: last, Backend: backends(c.IP.String() + ":8081")[0]})
	took = time.Since(start)
	t.Logf("backend change of one service among %d: %v", n, took)
	if took > 2*time.Second {
		t.Errorf("a backend change took %v", took)
	}

	a := l.Pods["a"]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, i := range []int{0, 499, n - 1} {
		s := h.service(t, set[i].VIP)
		vip := s.VIP[:len(s.VIP)-len("/tcp")]
		// The tables built ahead on other CPUs are the ones commit builds.
		var mb []maglev.Backend
		for _, b := range s.Backends {
			mb = append(mb, maglev.Backend{ID: b.ID, Key: b.Address, Weight: uint32(b.Weight)})
		}
		want, err := maglev.Build(mb, s.MaglevTableSize, testSeed)
		if err != nil {
			t.Fatal(err)
		}
		if got, _, err := h.store.Table(mustVIP(t, s.VIP)); err != nil || !slices.Equal(got, want) {
			t.Fatalf("%s: kernel table differs from maglev.Build (%v)", s.VIP, err)
		}
		seen := map[string]int{}
		for range 12 {
			name, err := a.AskName(ctx, "tcp", vip)
			if err != nil {
				t.Fatalf("tcp via %s: %v", vip, err)
			}
			seen[name]++
		}
		if seen["b"]+seen["c"] != 12 {
			t.Errorf("connections to %s reached %v", vip, seen)
		}
		for j := range 50 {
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, 0, 1}), uint16(30000+j))
			if got, want := h.synTo(t, src, ap(vip)), goChoice(t, s, src); got != want {
				t.Fatalf("%s flow %d went to %s, the Go table says %s", vip, j, got, want)
			}
		}
	}
	for reason, n := range h.Drops(t) {
		t.Errorf("%d packets dropped for %s", n, reason)
	}
}

// Tables rewritten again and again under traffic: the chunks of replaced
// tables are recycled (after grace periods) for the other service's new
// tables, and no packet ever reaches a backend outside its own service.
func TestPrivilegedLBMaglevTablesRewrittenUnderTraffic(t *testing.T) {
	h := newLB(t)
	const m = 131071 // 8192 chunks a table: lb4_maglev recycles after ~128
	a := h.add(t, services.ServiceAddArgs{VIP: "10.96.0.10:80/tcp", Algorithm: "maglev", MaglevTableSize: m,
		Backends: backends("10.240.1.1:80", "10.240.1.2:80")})
	b := h.add(t, services.ServiceAddArgs{VIP: "10.96.0.11:80/tcp", Algorithm: "maglev", MaglevTableSize: m,
		Backends: backends("10.240.2.1:80", "10.240.2.2:80")})
	sp := h.store.space
	graces := 0
	wait := sp.grace
	sp.grace = func() error { graces++; return wait() }
	vipA, vipB := ap("10.96.0.10:80"), ap("10.96.0.11:80")
	serviceOf := func(dst netip.AddrPort) netip.AddrPort { // backends 10.240.1.x are A's, 10.240.2.x B's
		switch dst.Addr().As4()[2] {
		case 1:
			return vipA
		case 2:
			return vipB
		}
		return netip.AddrPort{}
	}
	stop := make(chan struct{})
	errs := make(chan error, 1)
	sent := 0
	go func() {
		defer close(errs)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)}), uint16(1024+i%60000))
			for _, vip := range []netip.AddrPort{vipA, vipB} {
				r, err := h.Run(in, packet.TCP(src, vip, packet.SYN, nil))
				if err != nil {
					errs <- err
					return
				}
				_, dst := packet.Addrs(r.Packet)
				if serviceOf(dst) != vip {
					errs <- fmt.Errorf("a SYN to %s went to %s", vip, dst)
					return
				}
				sent++
			}
		}
	}()
	changes := 0
	for graces < 2 && changes < 600 {
		s := []services.ServiceInfo{a, b}[changes%2]
		third := fmt.Sprintf("10.240.%d.3:80", 1+changes%2)
		cmd := map[bool]string{true: "backend-add", false: "backend-del"}[changes/2%2 == 0]
		h.invoke(t, cmd, services.BackendArgs{VIP: s.VIP, Backend: services.BackendArg{Address: third}})
		changes++
	}
	close(stop)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d table changes, %d grace periods, %d SYNs", changes, graces, sent)
	if graces < 2 || sent == 0 {
		t.Fatalf("%d grace periods and %d SYNs: the test did not recycle chunks under traffic", graces, sent)
	}
}
