package lb

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/plugintest/packet"
	"github.com/hotpath/hotpath/core/services"
	"github.com/hotpath/hotpath/plugins/lb/maglev"
)

var (
	client = ap("10.240.1.2:40000")
	vipTCP = ap("10.96.0.10:80")
	be1    = ap("10.240.2.2:8080")
	be2    = ap("10.240.2.3:8080")
	be3    = ap("10.240.2.4:8080")
)

func TestPrivilegedLBTCPFlow(t *testing.T) {
	h := newLB(t)
	svc := h.add(t, services.ServiceAddArgs{VIP: "10.96.0.10:80/tcp", Backends: backends(be1.String(), be2.String()), Algorithm: "maglev"})

	r := h.run(t, in, packet.TCP(client, vipTCP, packet.SYN, nil))
	if r.Code != 0 {
		t.Fatalf("SYN verdict %d, want pass", r.Code)
	}
	src, dst := packet.Addrs(r.Packet)
	if src != client || (dst != be1 && dst != be2) {
		t.Fatalf("SYN left as %s -> %s, want %s -> a backend", src, dst, client)
	}
	if !packet.Valid(r.Packet) {
		t.Fatal("DNATed SYN has bad checksums")
	}
	backend := dst
	bid := idOf(t, svc, backend)

	svcKey := ctTuple(client, vipTCP, packet.ProtoTCP, abi.TupleService)
	ctAll := h.Dump(t, abi.MapCT4)
	e, ok := ctAll[svcKey]
	if !ok {
		t.Fatalf("no CT_SERVICE entry; ct4 holds %+v", ctAll)
	}
	if e.BackendId != bid || e.RevNatIndex != uint16(svc.ID) {
		t.Fatalf("CT_SERVICE entry backend %d rev_nat %d, want %d %d", e.BackendId, e.RevNatIndex, bid, svc.ID)
	}
	outKey := ctTuple(client, backend, packet.ProtoTCP, abi.TupleOut)
	if o, ok := ctAll[outKey]; !ok || o.RevNatIndex != uint16(svc.ID) {
		t.Fatalf("OUT entry for %s -> %s: %+v (found %v), want rev_nat_index %d", client, backend, o, ok, svc.ID)
	}

	// The flow sticks to its backend through algorithm changes and table
	// rebuilds, since its CT_SERVICE entry names the backend.
	steps := []func(){
		func() {
			h.invoke(t, "service-set-algorithm", services.SetAlgorithmArgs{VIP: svc.VIP, Algorithm: "random"})
		},
		func() {
			h.invoke(t, "service-set-algorithm", services.SetAlgorithmArgs{VIP: svc.VIP, Algorithm: "maglev", MaglevTableSize: 251})
		},
		func() {
			h.invoke(t, "backend-add", services.BackendArgs{VIP: svc.VIP, Backend: backends(be3.String())[0]})
		},
		func() {
			other := be1
			if backend == be1 {
				other = be2
			}
			h.invoke(t, "backend-del", services.BackendArgs{VIP: svc.VIP, Backend: backends(other.String())[0]})
		},
	}
	for i, step := range steps {
		step()
		for range 20 {
			r := h.run(t, in, packet.TCP(client, vipTCP, packet.ACK, []byte("data")))
			if _, dst := packet.Addrs(r.Packet); dst != backend || r.Code != 0 || !packet.Valid(r.Packet) {
				t.Fatalf("after step %d: packet went to %s (verdict %d, valid %v), want %s", i, dst, r.Code, packet.Valid(r.Packet), backend)
			}
		}
	}
	if got := h.Dump(t, abi.MapCT4)[svcKey].Packets; got != 81 {
		t.Fatalf("CT_SERVICE entry counted %d packets, want 81", got)
	}

	// A reply, seen where it leaves towards the client, comes from the VIP.
	r = h.run(t, out, packet.TCP(backend, client, packet.SYN|packet.ACK, nil))
	src, dst = packet.Addrs(r.Packet)
	if r.Code != 0 || src != vipTCP || dst != client {
		t.Fatalf("reply left as %s -> %s (verdict %d), want %s -> %s", src, dst, r.Code, vipTCP, client)
	}
	if !packet.Valid(r.Packet) {
		t.Fatal("reverse-NATed reply has bad checksums")
	}
}

func TestPrivilegedLBUDP(t *testing.T) {
	h := newLB(t)
	dns := ap("10.96.0.53:53")
	b := ap("10.240.2.9:5353")
	h.add(t, services.ServiceAddArgs{VIP: "10.96.0.53:53/udp", Backends: backends(b.String())})

	r := h.run(t, in, packet.UDP(client, dns, []byte("query")))
	if _, dst := packet.Addrs(r.Packet); dst != b || !packet.Valid(r.Packet) {
		t.Fatalf("UDP query went to %s (valid %v), want %s", dst, packet.Valid(r.Packet), b)
	}
	if _, ok := h.Dump(t, abi.MapCTAny4)[ctTuple(client, dns, packet.ProtoUDP, abi.TupleService)]; !ok {
		t.Fatal("no CT_SERVICE entry in ct_any4")
	}
	r = h.run(t, out, packet.UDP(b, client, []byte("answer")))
	if src, _ := packet.Addrs(r.Packet); src != dns || !packet.Valid(r.Packet) {
		t.Fatalf("UDP answer from %s (valid %v), want %s", src, packet.Valid(r.Packet), dns)
	}

	// No checksum (0) stays no checksum, both ways.
	c2 := ap("10.240.1.3:40001")
	q := packet.UDP(c2, dns, []byte("query"))
	q[40], q[41] = 0, 0
	r = h.run(t, in, q)
	if _, dst := packet.Addrs(r.Packet); dst != b || r.Packet[40]|r.Packet[41] != 0 || !ipHeaderValid(r.Packet) {
		t.Fatalf("zero-checksum query: to %s, udp csum %#x, ip ok %v", dst, r.Packet[40:42], ipHeaderValid(r.Packet))
	}
	a := packet.UDP(b, c2, []byte("answer"))
	a[40], a[41] = 0, 0
	r = h.run(t, out, a)
	if src, _ := packet.Addrs(r.Packet); src != dns || r.Packet[40]|r.Packet[41] != 0 || !ipHeaderValid(r.Packet) {
		t.Fatalf("zero-checksum answer: from %s, udp csum %#x, ip ok %v", src, r.Packet[40:42], ipHeaderValid(r.Packet))
	}
}

func TestPrivilegedLBLeavesOtherTrafficAlone(t *testing.T) {
	h := newLB(t)
	h.add(t, services.ServiceAddArgs{VIP: "10.96.0.10:80/tcp", Backends: backends(be1.String())})
	cases := map[string]struct {
		dir abi.AbiHpDir
		pkt []byte
	}{
		"other address":         {in, packet.TCP(client, ap("10.96.0.11:80"), packet.SYN, nil)},
		"other port":            {in, packet.TCP(client, ap("10.96.0.10:81"), packet.SYN, nil)},
		"other protocol":        {in, packet.UDP(client, vipTCP, []byte("x"))},
		"egress to the VIP":     {out, packet.TCP(client, vipTCP, packet.SYN, nil)},
		"ICMP to the VIP":       {in, packet.ICMPEcho(client.Addr(), vipTCP.Addr(), false, 7, 1)},
		"reply of a plain flow": {out, packet.TCP(be1, client, packet.SYN|packet.ACK, nil)},
	}
	for name, c := range cases {
		r := h.run(t, c.dir, c.pkt)
		if r.Code != 0 || !bytes.Equal(r.Packet, c.pkt) {
			t.Errorf("%s: verdict %d, packet changed %v", name, r.Code, !bytes.Equal(r.Packet, c.pkt))
		}
	}
	for k := range h.Dump(t, abi.MapCT4) {
		if k.Flags&abi.TupleService != 0 {
			t.Errorf("non-service traffic created a CT_SERVICE entry %+v", k)
		}
	}
}

// A service without backends answers like kube-proxy's REJECT: an RST for
// TCP, an ICMP port unreachable for UDP, from the VIP, back out of the
// device the packet came in by; counted as reject, no CT entry left.
func TestPrivilegedLBNoBackendRejects(t *testing.T) {
	h := newLB(t)
	for _, alg := range []string{"random", "maglev"} {
		vip := ap("10.96.0.20:80")
		if alg == "maglev" {
			vip = ap("10.96.0.21:80")
		}
		h.add(t, services.ServiceAddArgs{VIP: vip.String() + "/tcp", Algorithm: alg})
		syn := packet.TCP(client, vip, packet.SYN, nil)
		r := h.run(t, in, syn)
		if r.Code != 7 {
			t.Fatalf("%s service without backends: verdict %d, want redirect (7)", alg, r.Code)
		}
		checkRST(t, r.Packet, syn, vip, client, 0, 1001)
	}
	// An RST is never answered.
	if r := h.run(t, in, packet.TCP(client, ap("10.96.0.20:80"), packet.RST, nil)); r.Code != 2 {
		t.Fatalf("RST to a service without backends: verdict %d, want drop", r.Code)
	}
	// A segment with ACK gets an RST with its acknowledgment as sequence.
	ack := packet.TCP(client, ap("10.96.0.20:80"), packet.ACK, []byte("late data"))
	binary.BigEndian.PutUint32(ack[14+20+8:], 777)
	fixTCP(ack)
	r := h.run(t, in, ack)
	if r.Code != 7 {
		t.Fatalf("ACK to a service without backends: verdict %d", r.Code)
	}
	checkRST(t, r.Packet, ack, ap("10.96.0.20:80"), client, 777, 0)

	// UDP: ICMP port unreachable quoting the datagram's header.
	h.add(t, services.ServiceAddArgs{VIP: "10.96.0.23:53/udp"})
	q := packet.UDP(client, ap("10.96.0.23:53"), []byte("query for nobody"))
	r = h.run(t, in, q)
	if r.Code != 7 {
		t.Fatalf("UDP to a service without backends: verdict %d, want redirect", r.Code)
	}
	p := r.Packet
	if len(p) != 14+20+8+20+8 || p[23] != packet.ProtoICMP || p[34] != packet.ICMPDestUnreach || p[35] != packet.CodePortUnreach {
		t.Fatalf("UDP reject is not an ICMP port unreachable: % x", p)
	}
	if !packet.ICMPValid(p) {
		t.Fatalf("ICMP port unreachable has bad checksums: % x", p)
	}
	if src, dst := packet.Addrs(p); src.Addr() != ap("10.96.0.23:53").Addr() || dst.Addr() != client.Addr() {
		t.Fatalf("ICMP port unreachable from %s to %s", src.Addr(), dst.Addr())
	}
	if !bytes.Equal(p[42:42+28], q[14:14+28]) {
		t.Fatalf("quote % x, want the datagram's headers % x", p[42:70], q[14:42])
	}
	if !bytes.Equal(p[0:6], q[6:12]) || !bytes.Equal(p[6:12], q[0:6]) {
		t.Fatal("reject does not go back to the client's MAC")
	}

	if got := h.Metric(t, abi.AbiHpReasonHP_R_REJECT, in).Packets; got != 4 {
		t.Fatalf("reject counted %d, want 4", got)
	}
	if got := h.Metric(t, abi.AbiHpReasonHP_R_NO_BACKEND, in).Packets; got != 1 {
		t.Fatalf("no_backend (dropped, not answerable) counted %d, want 1", got)
	}
	if n := len(h.Dump(t, abi.MapCT4)) + len(h.Dump(t, abi.MapCTAny4)); n != 0 {
		t.Fatalf("rejected packets left %d CT entries", n)
	}
	// The last backend removed: the same.
	h.add(t, services.ServiceAddArgs{VIP: "10.96.0.22:80/tcp", Backends: backends(be1.String())})
	h.invoke(t, "backend-del", services.BackendArgs{VIP: "10.96.0.22:80/tcp", Backend: backends(be1.String())[0]})
	if r := h.run(t, in, packet.TCP(ap("10.240.1.9:40000"), ap("10.96.0.22:80"), packet.SYN, nil)); r.Code != 7 {
		t.Fatalf("service whose last backend went: verdict %d, want reject", r.Code)
	}
}

// checkRST checks that p is the RST answering orig, from vip to client.
func checkRST(t *testing.T, p, orig []byte, vip, client netip.AddrPort, seq, ackSeq uint32) {
	t.Helper()
	if len(p) != 54 || !packet.Valid(p) {
		t.Fatalf("reject is not a valid bare services.TCP segment: % x", p)
	}
	if src, dst := packet.Addrs(p); src != vip || dst != client {
		t.Fatalf("RST from %s to %s, want %s -> %s", src, dst, vip, client)
	}
	flags := p[14+20+13]
	wantFlags := uint8(packet.RST)
	if ackSeq != 0 {
		wantFlags |= packet.ACK
	}
	if flags != wantFlags || binary.BigEndian.Uint32(p[38:]) != seq || binary.BigEndian.Uint32(p[42:]) != ackSeq {
		t.Fatalf("RST flags %#x seq %d ack %d, want %#x %d %d", flags, binary.BigEndian.Uint32(p[38:]),
			binary.BigEndian.Uint32(p[42:]), wantFlags, seq, ackSeq)
	}
	if !bytes.Equal(p[0:6], orig[6:12]) || !bytes.Equal(p[6:12], orig[0:6]) {
		t.Fatal("RST does not go back to the client's MAC")
	}
}

// fixTCP recomputes the TCP checksum of a frame built by packet.TCP after a
// test changed its header.
func fixTCP(b []byte) {
	b[14+36], b[14+37] = 0, 0
	binary.BigEndian.PutUint16(b[14+36:], tcpChecksum(b))
}

func tcpChecksum(b []byte) uint16 {
	var sum uint32
	for i := 26; i < 34; i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	l4 := b[34:]
	sum += 6 + uint32(len(l4))
	for i := 0; i+1 < len(l4); i += 2 {
		sum += uint32(l4[i])<<8 | uint32(l4[i+1])
	}
	if len(l4)%2 == 1 {
		sum += uint32(l4[len(l4)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// The datapath's Maglev choice is the Go table's: same hash, same table.
func TestPrivilegedLBMaglevMatchesGo(t *testing.T) {
	h := newLB(t)
	bs := backends("10.240.2.2:8080,weight=1", "10.240.2.3:8080,weight=3", "10.240.2.4:9090,weight=2",
		"10.240.3.1:8080,weight=1", "10.240.3.2:8080,weight=5")
	for _, c := range []struct {
		vip   netip.AddrPort
		proto string
		m     int64
	}{{ap("10.96.0.10:80"), "tcp", 251}, {ap("10.96.0.11:53"), "udp", 16381}} {
		svc := h.add(t, services.ServiceAddArgs{VIP: c.vip.String() + "/" + c.proto, Backends: bs, Algorithm: "maglev", MaglevTableSize: c.m})
		var mb []maglev.Backend
		addrOf := map[uint32]netip.AddrPort{}
		for _, b := range svc.Backends {
			mb = append(mb, maglev.Backend{ID: b.ID, Key: b.Address, Weight: uint32(b.Weight)})
			addrOf[b.ID] = ap(b.Address)
		}
		table, err := maglev.Build(mb, uint32(c.m), testSeed)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, uint64(c.m)))
		for i := range 1000 {
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(rng.IntN(256)), byte(rng.IntN(256)), byte(1 + rng.IntN(254))}), uint16(1024+rng.IntN(60000)))
			var pkt []byte
			proto := uint8(packet.ProtoTCP)
			if c.proto == "udp" {
				pkt, proto = packet.UDP(src, c.vip, []byte("q")), packet.ProtoUDP
			} else {
				pkt = packet.TCP(src, c.vip, packet.SYN, nil)
			}
			s4, d4 := src.Addr().As4(), c.vip.Addr().As4()
			hash := maglev.HashTuple(binary.BigEndian.Uint32(s4[:]), binary.BigEndian.Uint32(d4[:]), src.Port(), c.vip.Port(), proto, testSeed)
			want := addrOf[maglev.Lookup(table, hash)]
			r := h.run(t, in, pkt)
			if _, dst := packet.Addrs(r.Packet); dst != want {
				t.Fatalf("%s flow %d from %s: datapath chose %s, Go table %s", c.proto, i, src, dst, want)
			}
		}
	}
}

func TestPrivilegedLBRandomFollowsWeights(t *testing.T) {
	h := newLB(t)
	svc := h.add(t, services.ServiceAddArgs{VIP: "10.96.0.10:80/tcp", Algorithm: "random",
		Backends: backends(be1.String()+",weight=1", be2.String()+",weight=2", be3.String()+",weight=3")})
	if n := countSlots(t, h, svc.ID); n != 6 {
		t.Fatalf("%d slots for weights 1,2,3, want 6", n)
	}
	const flows = 6000
	got := map[netip.AddrPort]int{}
	for i := range flows {
		src := netip.AddrPortFrom(client.Addr(), uint16(1024+i))
		r := h.run(t, in, packet.TCP(src, vipTCP, packet.SYN, nil))
		_, dst := packet.Addrs(r.Packet)
		got[dst]++
	}
	for b, w := range map[netip.AddrPort]float64{be1: 1, be2: 2, be3: 3} {
		share := float64(got[b]) / flows
		if want := w / 6; share < want-0.03 || share > want+0.03 {
			t.Errorf("backend %s got %.3f of new flows, want %.3f ± 0.03 (all: %v)", b, share, want, got)
		}
	}
}

func countSlots(t *testing.T, h *lbHarness, svcID uint32) int {
	t.Helper()
	var k abi.LB4SlotKey
	var v uint32
	n := 0
	it := h.maps.Slots.Iterate()
	for it.Next(&k, &v) {
		if k.SvcId == svcID {
			n++
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// A flow whose backend is removed moves to a live one on its next packet
// and its CT_SERVICE entry records the move.
func TestPrivilegedLBBackendRemovedReselects(t *testing.T) {
	h := newLB(t)
	svc := h.add(t, services.ServiceAddArgs{VIP: "10.96.0.10:80/tcp", Backends: backends(be1.String(), be2.String(), be3.String()), Algorithm: "maglev"})
	r := h.run(t, in, packet.TCP(client, vipTCP, packet.SYN, nil))
	_, first := packet.Addrs(r.Packet)
	h.invoke(t, "backend-del", services.BackendArgs{VIP: svc.VIP, Backend: backendArg(first)})
	r = h.run(t, in, packet.TCP(client, vipTCP, packet.ACK, nil))
	_, second := packet.Addrs(r.Packet)
	if r.Code != 0 || second == first || !slices.Contains([]netip.AddrPort{be1, be2, be3}, second) || !packet.Valid(r.Packet) {
		t.Fatalf("after deleting %s the flow went to %s (verdict %d)", first, second, r.Code)
	}
	svc = h.service(t, svc.VIP)
	e := h.Dump(t, abi.MapCT4)[ctTuple(client, vipTCP, packet.ProtoTCP, abi.TupleService)]
	if e.BackendId != idOf(t, svc, second) {
		t.Fatalf("CT_SERVICE entry names backend %d, want %d (%s)", e.BackendId, idOf(t, svc, second), second)
	}
	for range 5 {
		r = h.run(t, in, packet.TCP(client, vipTCP, packet.ACK, nil))
		if _, dst := packet.Addrs(r.Packet); dst != second {
			t.Fatalf("flow moved again, to %s", dst)
		}
	}
}

func backendArg(a netip.AddrPort) services.BackendArg {
	return services.BackendArg{Address: a.String()}
}

func TestPrivilegedLBSessionAffinity(t *testing.T) {
	h := newLB(t)
	var bs []string
	for i := range 8 {
		bs = append(bs, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 240, 2, byte(10 + i)}), 8080).String())
	}
	svc := h.add(t, services.ServiceAddArgs{VIP: "10.96.0.10:80/tcp", Backends: backends(bs...), Algorithm: "random", AffinityTimeoutSeconds: 600})
	if svc.AffinityTimeout != 600 {
		t.Fatalf("affinity timeout %d, want 600", svc.AffinityTimeout)
	}
	var first netip.AddrPort
	for i := range 50 {
		src := netip.AddrPortFrom(client.Addr(), uint16(20000+i))
		r := h.run(t, in, packet.TCP(src, vipTCP, packet.SYN, nil))
		_, dst := packet.Addrs(r.Packet)
		if i == 0 {
			first = dst
		} else if dst != first {
			t.Fatalf("connection %d of one client went to %s, the first to %s", i, dst, first)
		}
	}
	var a abi.LB4Affinity
	if err := h.maps.Affinity.Lookup(abi.LB4AffKey{Client: addrU32(client.Addr()), SvcId: svc.ID}, &a); err != nil {
		t.Fatalf("affinity entry: %v", err)
	}
	if a.BackendId != idOf(t, svc, first) {
		t.Fatalf("affinity entry names %d, want %d", a.BackendId, idOf(t, svc, first))
	}
	// Other clients spread over the backends.
	seen := map[netip.AddrPort]bool{}
	for i := range 64 {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 240, 1, byte(10 + i)}), 40000)
		_, dst := packet.Addrs(h.run(t, in, packet.TCP(src, vipTCP, packet.SYN, nil)).Packet)
		seen[dst] = true
	}
	if len(seen) < 4 {
		t.Fatalf("64 clients used only %d of 8 backends", len(seen))
	}
	// An expired entry is not honoured: age it beyond the timeout.
	a.LastUsed -= 601
	if err := h.maps.Affinity.Put(abi.LB4AffKey{Client: addrU32(client.Addr()), SvcId: svc.ID}, a); err != nil {
		t.Fatal(err)
	}
	moved := false
	for i := range 64 {
		src := netip.AddrPortFrom(client.Addr(), uint16(30000+i))
		_, dst := packet.Addrs(h.run(t, in, packet.TCP(src, vipTCP, packet.SYN, nil)).Packet)
		if dst != first {
			moved = true
			break
		}
		// A fresh entry for `first` now exists; age it again.
		h.maps.Affinity.Lookup(abi.LB4AffKey{Client: addrU32(client.Addr()), SvcId: svc.ID}, &a)
		a.LastUsed -= 601
		h.maps.Affinity.Put(abi.LB4AffKey{Client: addrU32(client.Addr()), SvcId: svc.ID}, a)
	}
	if !moved {
		t.Fatal("expired affinity kept sending new connections to one backend")
	}
}

// TestPrivilegedLBAccountingOff: with lb's accounting off a CT_SERVICE
// entry still pins its flow to the backend and stays alive, but counts
// nothing, so an established flow through a VIP only reads it.
func TestPrivilegedLBAccountingOff(t *testing.T) {
	h := newLBWith(t, func(c *Config) { c.Accounting = false })
	h.add(t, services.ServiceAddArgs{VIP: "10.96.0.10:80/tcp", Backends: backends(be1.String(), be2.String()), Algorithm: "maglev"})
	r := h.run(t, in, packet.TCP(client, vipTCP, packet.SYN, nil))
	_, backend := packet.Addrs(r.Packet)
	for range 5 {
		r := h.run(t, in, packet.TCP(client, vipTCP, packet.ACK, []byte("data")))
		if _, dst := packet.Addrs(r.Packet); r.Code != 0 || dst != backend {
			t.Fatalf("packet went to %s (verdict %d), want %s", dst, r.Code, backend)
		}
	}
	e, ok := h.Dump(t, abi.MapCT4)[ctTuple(client, vipTCP, packet.ProtoTCP, abi.TupleService)]
	if !ok {
		t.Fatal("no CT_SERVICE entry")
	}
	if e.Packets != 0 || e.Bytes != 0 {
		t.Errorf("CT_SERVICE counters %d/%d with accounting off, want 0/0", e.Packets, e.Bytes)
	}
	if e.Flags&abi.CTSeenNonSyn == 0 || int64(e.Lifetime)-int64(ctmap.Now()) < 21590 {
		t.Errorf("CT_SERVICE entry not refreshed: flags %#x, lifetime %d (now %d)", e.Flags, e.Lifetime, ctmap.Now())
	}
}
