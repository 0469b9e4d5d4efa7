package lb

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/plugintest/packet"
	"github.com/hotpath/hotpath/core/services"
)

// An ICMP error about a translated flow reaches the client about the VIP:
// outer source (when the backend sent it), quoted destination and port, and
// every checksum, the quoted L4 one included when it is quoted.
func TestPrivilegedLBICMPErrorBackToVIP(t *testing.T) {
	h := newLB(t)
	dns := ap("10.96.0.53:53")
	b := ap("10.240.2.9:5353")
	node := netip.MustParseAddr("10.240.0.1")
	h.add(t, services.ServiceAddArgs{VIP: "10.96.0.53:53/udp", Backends: backends(b.String())})
	vipTCP := ap("10.96.0.10:80")
	h.add(t, services.ServiceAddArgs{VIP: "10.96.0.10:80/tcp", Backends: backends(be1.String())})

	q := h.run(t, in, packet.UDP(client, dns, []byte("query"))).Packet
	if _, dst := packet.Addrs(q); dst != b {
		t.Fatalf("query went to %s", dst)
	}
	syn := h.run(t, in, packet.TCP(client, vipTCP, packet.SYN, nil)).Packet
	data := h.run(t, in, packet.TCP(client, vipTCP, packet.ACK, bytes.Repeat([]byte("x"), 100))).Packet

	cases := []struct {
		name     string
		err      []byte
		src      netip.Addr // outer source after translation
		quoteDst netip.AddrPort
		quotedL4 bool // the quote holds the whole L4 segment: its checksum must be right too
	}{
		{"port unreachable from the backend",
			packet.ICMPError(b.Addr(), client.Addr(), packet.ICMPDestUnreach, packet.CodePortUnreach, 0, q, 0),
			dns.Addr(), dns, true},
		{"fragmentation needed from this node, 8 bytes of TCP quoted",
			packet.ICMPError(node, client.Addr(), packet.ICMPDestUnreach, packet.CodeFragNeeded, 1280, data, 28),
			node, vipTCP, false},
		{"time exceeded from a router, whole SYN quoted",
			packet.ICMPError(node, client.Addr(), packet.ICMPTimeExceeded, 0, 0, syn, 0),
			node, vipTCP, true},
		{"parameter problem from the backend",
			packet.ICMPError(be1.Addr(), client.Addr(), packet.ICMPParamProblem, 0, 0, data, 40),
			vipTCP.Addr(), vipTCP, false},
	}
	for i, c := range cases {
		r := h.run(t, out, c.err)
		if r.Code != 0 {
			t.Fatalf("%s: verdict %d", c.name, r.Code)
		}
		p := r.Packet
		if !packet.ICMPValid(p) {
			t.Fatalf("%s: bad checksums after translation: % x", c.name, p)
		}
		if src, dst := packet.Addrs(p); src.Addr() != c.src || dst.Addr() != client.Addr() {
			t.Fatalf("%s: error from %s to %s, want %s -> %s", c.name, src.Addr(), dst.Addr(), c.src, client.Addr())
		}
		qsrc, qdst := packet.Addrs(packet.Quoted(p))
		if qsrc != client || qdst != c.quoteDst {
			t.Fatalf("%s: quotes %s -> %s, want %s -> %s", c.name, qsrc, qdst, client, c.quoteDst)
		}
		if c.quotedL4 && !packet.QuotedL4Valid(p) {
			t.Fatalf("%s: quoted L4 checksum wrong after translation", c.name)
		}
		if !bytes.Equal(p[34+4:34+8], c.err[34+4:34+8]) {
			t.Fatalf("%s: the error's own fields (next-hop MTU) changed", c.name)
		}
		if got := h.Metric(t, abi.AbiHpReasonHP_R_ICMP_RELATED, out).Packets; got != uint64(i+1) {
			t.Fatalf("%s: icmp_related counted %d, want %d", c.name, got, i+1)
		}
	}

	// An error quoting nothing we track passes untouched and creates no entry.
	before := len(h.Dump(t, abi.MapCTAny4))
	stray := packet.ICMPError(node, client.Addr(), packet.ICMPDestUnreach, packet.CodePortUnreach, 0,
		packet.UDP(client, ap("10.240.9.9:99"), []byte("x")), 0)
	if r := h.run(t, out, stray); r.Code != 0 || !bytes.Equal(r.Packet, stray) {
		t.Fatalf("untracked error: verdict %d, changed %v", r.Code, !bytes.Equal(r.Packet, stray))
	}
	if after := len(h.Dump(t, abi.MapCTAny4)); after != before {
		t.Fatalf("an ICMP error created %d CT entries", after-before)
	}
}

// Every fragment of a datagram to a VIP goes to the same backend, and every
// fragment of the answer comes back from the VIP; the reassembled datagrams
// are valid.
func TestPrivilegedLBFragments(t *testing.T) {
	h := newLB(t)
	dns := ap("10.96.0.53:53")
	b := ap("10.240.2.9:5353")
	h.add(t, services.ServiceAddArgs{VIP: "10.96.0.53:53/udp", Backends: backends(b.String())})

	payload := make([]byte, 3000)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	frags := packet.Fragment(packet.UDP(client, dns, payload), 0x4242, 1500)
	if len(frags) != 3 {
		t.Fatalf("%d fragments", len(frags))
	}
	var got [][]byte
	for i, f := range frags {
		r := h.run(t, in, f)
		if r.Code != 0 {
			t.Fatalf("fragment %d: verdict %d", i, r.Code)
		}
		if !ipHeaderValid(r.Packet) {
			t.Fatalf("fragment %d: bad IP checksum", i)
		}
		var d [4]byte
		copy(d[:], r.Packet[30:34])
		if netip.AddrFrom4(d) != b.Addr() {
			t.Fatalf("fragment %d went to %s, want %s", i, netip.AddrFrom4(d), b.Addr())
		}
		got = append(got, r.Packet)
	}
	whole := packet.Reassemble(got)
	if _, dst := packet.Addrs(whole); dst != b || !packet.Valid(whole) || !bytes.Equal(whole[42:], payload) {
		t.Fatalf("reassembled datagram to %s, valid %v", dst, packet.Valid(whole))
	}

	// The answer, fragmented by the backend.
	frags = packet.Fragment(packet.UDP(b, client, payload), 0x1717, 1500)
	got = nil
	for i, f := range frags {
		r := h.run(t, out, f)
		var s [4]byte
		copy(s[:], r.Packet[26:30])
		if r.Code != 0 || netip.AddrFrom4(s) != dns.Addr() {
			t.Fatalf("answer fragment %d from %s (verdict %d), want %s", i, netip.AddrFrom4(s), r.Code, dns.Addr())
		}
		got = append(got, r.Packet)
	}
	whole = packet.Reassemble(got)
	if src, _ := packet.Addrs(whole); src != dns || !packet.Valid(whole) {
		t.Fatalf("reassembled answer from %s, valid %v", src, packet.Valid(whole))
	}
	if n := h.Metric(t, abi.AbiHpReasonHP_R_FRAGMENT, in).Packets + h.Metric(t, abi.AbiHpReasonHP_R_FRAGMENT, out).Packets; n != 6 {
		t.Fatalf("fragment counted %d, want 6", n)
	}
	var e abi.CTEntry
	if err := h.Maps[abi.MapCTAny4].Lookup(ctTuple(client, dns, packet.ProtoUDP, abi.TupleService), &e); err != nil || e.Packets != 3 {
		t.Fatalf("CT_SERVICE entry counted %d packets (err %v), want 3 fragments", e.Packets, err)
	}

	// A later fragment whose first fragment was never seen is dropped.
	orphan := packet.Fragment(packet.UDP(client, dns, payload), 0x9999, 1500)[1]
	if r := h.run(t, in, orphan); r.Code != 2 {
		t.Fatalf("orphan fragment: verdict %d, want drop", r.Code)
	}
	if n := h.Metric(t, abi.AbiHpReasonHP_R_FRAG_NOT_FOUND, in).Packets; n != 1 {
		t.Fatalf("frag_not_found counted %d, want 1", n)
	}
	// Other protocols' fragments pass as before.
	gre := packet.Fragment(packet.Raw(client.Addr(), b.Addr(), 47, payload), 0x5555, 1500)[1]
	if r := h.run(t, in, gre); r.Code != 0 || !bytes.Equal(r.Packet, gre) {
		t.Fatalf("GRE fragment: verdict %d", r.Code)
	}
}

// A CT_SERVICE entry sees only the client's direction: one FIN from the
// client closes both of its directions (Cilium), so it expires with the close
// lifetime instead of living for the TCP lifetime; the last ACK does not
// refresh it, and a SYN on the same tuple reopens it.
func TestPrivilegedLBServiceEntryCloses(t *testing.T) {
	h := newLB(t)
	vip := ap("10.96.0.10:80")
	h.add(t, services.ServiceAddArgs{VIP: "10.96.0.10:80/tcp", Backends: backends(be1.String())})
	key := ctTuple(client, vip, packet.ProtoTCP, abi.TupleService)
	get := func() abi.CTEntry {
		var e abi.CTEntry
		if err := h.Maps[abi.MapCT4].Lookup(key, &e); err != nil {
			t.Fatalf("CT_SERVICE entry: %v", err)
		}
		return e
	}
	now := func() int64 { return int64(ctmap.Now()) }

	h.run(t, in, packet.TCP(client, vip, packet.SYN, nil))
	if l := int64(get().Lifetime) - now(); l < 58 || l > 61 {
		t.Fatalf("service entry after SYN: %ds left, want the SYN lifetime", l)
	}
	h.run(t, in, packet.TCP(client, vip, packet.ACK, []byte("GET /")))
	if l := int64(get().Lifetime) - now(); l < 21598 {
		t.Fatalf("established service entry: %ds left", l)
	}
	h.run(t, in, packet.TCP(client, vip, packet.FIN|packet.ACK, nil))
	e := get()
	if e.Flags&(abi.CTTxClosing|abi.CTRxClosing) != abi.CTTxClosing|abi.CTRxClosing {
		t.Fatalf("service entry after the client's FIN: flags %#x, want both closing", e.Flags)
	}
	if l := int64(e.Lifetime) - now(); l < 8 || l > 11 {
		t.Fatalf("closed service entry: %ds left, want the close lifetime", l)
	}
	e.Lifetime = uint32(now() + 3)
	if err := h.Maps[abi.MapCT4].Put(key, e); err != nil {
		t.Fatal(err)
	}
	r := h.run(t, in, packet.TCP(client, vip, packet.ACK, nil))
	if _, dst := packet.Addrs(r.Packet); dst != be1 {
		t.Fatalf("last ACK went to %s", dst)
	}
	if l := int64(get().Lifetime) - now(); l > 3 {
		t.Fatalf("last ACK refreshed the dead service entry: %ds left", l)
	}
	h.run(t, in, packet.TCP(client, vip, packet.SYN, nil))
	if e := get(); e.Flags&(abi.CTTxClosing|abi.CTRxClosing) != 0 || int64(e.Lifetime)-now() < 58 {
		t.Fatalf("SYN on the closed tuple: flags %#x, %ds left", e.Flags, int64(e.Lifetime)-now())
	}
}

// An error the client sends to the VIP about a reply it got (its socket was
// gone) reaches the backend that sent the reply, about the backend's address.
func TestPrivilegedLBICMPErrorToBackend(t *testing.T) {
	h := newLB(t)
	dns := ap("10.96.0.53:53")
	b := ap("10.240.2.9:5353")
	h.add(t, services.ServiceAddArgs{VIP: "10.96.0.53:53/udp", Backends: backends(b.String())})
	h.run(t, in, packet.UDP(client, dns, []byte("query")))
	answer := h.run(t, out, packet.UDP(b, client, []byte("late answer"))).Packet
	if src, _ := packet.Addrs(answer); src != dns {
		t.Fatalf("answer from %s", src)
	}
	e := packet.ICMPError(client.Addr(), dns.Addr(), packet.ICMPDestUnreach, packet.CodePortUnreach, 0, answer, 0)
	r := h.run(t, in, e)
	if r.Code != 0 || !packet.ICMPValid(r.Packet) {
		t.Fatalf("verdict %d, checksums valid %v", r.Code, packet.ICMPValid(r.Packet))
	}
	if src, dst := packet.Addrs(r.Packet); src.Addr() != client.Addr() || dst.Addr() != b.Addr() {
		t.Fatalf("error from %s to %s, want %s -> %s", src.Addr(), dst.Addr(), client.Addr(), b.Addr())
	}
	if qsrc, qdst := packet.Addrs(packet.Quoted(r.Packet)); qsrc != b || qdst != client || !packet.QuotedL4Valid(r.Packet) {
		t.Fatalf("quotes %s -> %s (L4 checksum ok %v), want %s -> %s", qsrc, qdst, packet.QuotedL4Valid(r.Packet), b, client)
	}
	if got := h.Metric(t, abi.AbiHpReasonHP_R_ICMP_RELATED, in).Packets; got != 1 {
		t.Fatalf("icmp_related counted %d, want 1", got)
	}
}
