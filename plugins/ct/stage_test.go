package ct

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/plugintest"
	"github.com/hotpath/hotpath/core/plugintest/packet"
)

const (
	in  = abi.AbiHpDirHP_DIR_INGRESS
	out = abi.AbiHpDirHP_DIR_EGRESS
)

var (
	client = netip.MustParseAddrPort("10.240.1.2:40000")
	server = netip.MustParseAddrPort("10.240.2.2:80")
)

func newStage(t *testing.T) *plugintest.Harness {
	h, _ := newStageProg(t)
	return h
}

func newStageProg(t *testing.T) (*plugintest.Harness, *ebpf.Program) {
	h := plugintest.New(t)
	prog, _, err := LoadStage(h.Layout, 1, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	h.Install(t, map[abi.Slot]*ebpf.Program{abi.AbiHpSlotHP_SLOT_CT: prog})
	return h, prog
}

func tuple(src, dst netip.AddrPort, proto uint8, flags uint8) abi.CTTuple {
	s, d := src.Addr().As4(), dst.Addr().As4()
	return abi.CTTuple{
		Saddr: binary.NativeEndian.Uint32(s[:]), Daddr: binary.NativeEndian.Uint32(d[:]),
		Sport: htons(src.Port()), Dport: htons(dst.Port()), Nexthdr: proto, Flags: flags,
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func run(t *testing.T, h *plugintest.Harness, dir abi.AbiHpDir, pkt []byte) uint32 {
	t.Helper()
	r, err := h.Run(dir, pkt)
	if err != nil {
		t.Fatal(err)
	}
	return r.Code
}

func entry(t *testing.T, h *plugintest.Harness, m string, k abi.CTTuple) abi.CTEntry {
	t.Helper()
	all := h.Dump(t, m)
	e, ok := all[k]
	if !ok {
		t.Fatalf("%s: no entry for %+v; have %d entries: %+v", m, k, len(all), all)
	}
	return e
}

func nowSec() uint32 { return ctmap.Now() }

func TestPrivilegedCTStageTCPHandshakeDataClose(t *testing.T) {
	h := newStage(t)
	key := tuple(client, server, packet.ProtoTCP, abi.TupleOut)
	var bytes uint64
	send := func(dir abi.AbiHpDir, p []byte) {
		t.Helper()
		if code := run(t, h, dir, p); code != 0 {
			t.Fatalf("verdict %d, want pass", code)
		}
		bytes += uint64(len(p))
	}

	send(in, packet.TCP(client, server, packet.SYN, nil))
	e := entry(t, h, abi.MapCT4, key)
	if e.Packets != 1 || e.Flags&abi.CTSeenNonSyn != 0 || e.TxFlagsSeen != packet.SYN {
		t.Fatalf("after SYN: %+v", e)
	}
	if left := int64(e.Lifetime) - int64(nowSec()); left < 55 || left > 61 {
		t.Fatalf("SYN lifetime %ds left, want ~60", left)
	}

	send(out, packet.TCP(server, client, packet.SYN|packet.ACK, nil))
	send(in, packet.TCP(client, server, packet.ACK, nil))
	send(in, packet.TCP(client, server, packet.ACK|packet.PSH, make([]byte, 1000)))
	send(out, packet.TCP(server, client, packet.ACK|packet.PSH, make([]byte, 300)))
	e = entry(t, h, abi.MapCT4, key)
	if e.Packets != 5 || e.Bytes != bytes {
		t.Fatalf("counters %d/%d, want 5/%d", e.Packets, e.Bytes, bytes)
	}
	if e.Flags&abi.CTSeenNonSyn == 0 || e.RxFlagsSeen != packet.SYN|packet.ACK|packet.PSH {
		t.Fatalf("after data: flags %#x rx seen %#x", e.Flags, e.RxFlagsSeen)
	}
	if left := int64(e.Lifetime) - int64(nowSec()); left < 21590 {
		t.Fatalf("established lifetime %ds left, want ~21600", left)
	}
	if len(h.Dump(t, abi.MapCT4)) != 1 {
		t.Fatal("reply created a second entry")
	}

	send(in, packet.TCP(client, server, packet.FIN|packet.ACK, nil))
	e = entry(t, h, abi.MapCT4, key)
	if e.Flags&abi.CTTxClosing == 0 || e.Flags&abi.CTRxClosing != 0 {
		t.Fatalf("after client FIN: flags %#x", e.Flags)
	}
	send(out, packet.TCP(server, client, packet.FIN|packet.ACK, nil))
	e = entry(t, h, abi.MapCT4, key)
	if e.Flags&(abi.CTTxClosing|abi.CTRxClosing) != abi.CTTxClosing|abi.CTRxClosing {
		t.Fatalf("after both FINs: flags %#x", e.Flags)
	}
	if left := int64(e.Lifetime) - int64(nowSec()); left > 11 {
		t.Fatalf("closing lifetime %ds left, want ~10", left)
	}
	if got := h.Metric(t, abi.AbiHpReasonHP_R_FORWARD, in).Packets; got != 4 {
		t.Fatalf("forward metric ingress %d, want 4", got)
	}
}

func TestPrivilegedCTStageRST(t *testing.T) {
	h := newStage(t)
	run(t, h, in, packet.TCP(client, server, packet.SYN, nil))
	run(t, h, out, packet.TCP(server, client, packet.RST|packet.ACK, nil))
	e := entry(t, h, abi.MapCT4, tuple(client, server, packet.ProtoTCP, abi.TupleOut))
	if e.Flags&(abi.CTTxClosing|abi.CTRxClosing) != abi.CTTxClosing|abi.CTRxClosing {
		t.Fatalf("after RST: flags %#x", e.Flags)
	}
	// A new SYN on the closed tuple reopens it.
	run(t, h, in, packet.TCP(client, server, packet.SYN, nil))
	e = entry(t, h, abi.MapCT4, tuple(client, server, packet.ProtoTCP, abi.TupleOut))
	if e.Flags&(abi.CTTxClosing|abi.CTRxClosing) != 0 {
		t.Fatalf("SYN did not reopen: flags %#x", e.Flags)
	}
}

func TestPrivilegedCTStageDirections(t *testing.T) {
	h := newStage(t)
	// First seen at an egress hook: the connection comes towards the endpoint.
	run(t, h, out, packet.TCP(client, server, packet.SYN, nil))
	run(t, h, in, packet.TCP(server, client, packet.SYN|packet.ACK, nil))
	e := entry(t, h, abi.MapCT4, tuple(client, server, packet.ProtoTCP, abi.TupleIn))
	if e.Packets != 2 {
		t.Fatalf("IN entry packets %d, want 2", e.Packets)
	}
	if n := len(h.Dump(t, abi.MapCT4)); n != 1 {
		t.Fatalf("%d entries, want 1", n)
	}
}

func TestPrivilegedCTStageUDPAndICMP(t *testing.T) {
	h := newStage(t)
	dns := netip.MustParseAddrPort("10.240.2.2:53")
	run(t, h, in, packet.UDP(client, dns, []byte("query")))
	run(t, h, out, packet.UDP(dns, client, []byte("answer")))
	e := entry(t, h, abi.MapCTAny4, tuple(client, dns, packet.ProtoUDP, abi.TupleOut))
	if e.Packets != 2 {
		t.Fatalf("UDP entry packets %d, want 2", e.Packets)
	}
	if left := int64(e.Lifetime) - int64(nowSec()); left < 55 || left > 61 {
		t.Fatalf("UDP lifetime %ds left, want ~60", left)
	}
	if n := len(h.Dump(t, abi.MapCT4)); n != 0 {
		t.Fatalf("UDP landed in ct4 (%d entries)", n)
	}

	run(t, h, in, packet.ICMPEcho(client.Addr(), server.Addr(), false, 77, 1))
	run(t, h, out, packet.ICMPEcho(server.Addr(), client.Addr(), true, 77, 1))
	icmp := abi.CTTuple{Nexthdr: packet.ProtoICMP, Sport: htons(77), Flags: abi.TupleOut}
	s, d := client.Addr().As4(), server.Addr().As4()
	icmp.Saddr, icmp.Daddr = binary.NativeEndian.Uint32(s[:]), binary.NativeEndian.Uint32(d[:])
	if e := entry(t, h, abi.MapCTAny4, icmp); e.Packets != 2 {
		t.Fatalf("ICMP entry packets %d, want 2", e.Packets)
	}
}

func TestPrivilegedCTStageMalformed(t *testing.T) {
	h := newStage(t)
	good := packet.TCP(client, server, packet.SYN, nil)
	ipOnly := append([]byte(nil), good[:34]...)
	ipOnly[17] = 20 // tot_len: no room for TCP
	badIHL := append([]byte(nil), good...)
	badIHL[14] = 0x44
	badDoff := append([]byte(nil), good...)
	badDoff[14+20+12] = 4 << 4
	longTot := append([]byte(nil), good...)
	longTot[16], longTot[17] = 0x05, 0xdc
	shortUDP := packet.Raw(client.Addr(), server.Addr(), packet.ProtoUDP, []byte{1, 2, 3})
	shortICMP := packet.Raw(client.Addr(), server.Addr(), packet.ProtoICMP, []byte{8, 0})
	v6 := append([]byte(nil), good[:14]...)
	v6 = append(v6, good[14:]...)
	v6[14] = 0x65 // version 6 in an IPv4 ethertype

	totShort := append([]byte(nil), good...)
	totShort[16], totShort[17] = 0, 10
	ihlBeyond := append([]byte(nil), good[:34]...)
	ihlBeyond[14], ihlBeyond[17] = 0x4f, 34 // 60-byte header in a 20-byte packet

	// BPF_PROG_TEST_RUN refuses IPv4 frames shorter than 34 bytes itself, so
	// truncation is expressed through the header's own length fields.
	cases := map[string][]byte{
		"tot_len < ihl": totShort, "ihl beyond packet": ihlBeyond, "tcp truncated": ipOnly, "ihl < 5": badIHL,
		"doff < 5": badDoff, "tot_len beyond packet": longTot, "udp truncated": shortUDP,
		"icmp truncated": shortICMP, "version 6 in ipv4": v6,
	}
	for name, p := range cases {
		r, err := h.Run(in, p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.Code != 2 {
			t.Errorf("%s: verdict %d, want drop", name, r.Code)
		}
	}
	if got := h.Metric(t, abi.AbiHpReasonHP_R_PARSE_ERROR, in).Packets; got != uint64(len(cases)) {
		t.Errorf("parse errors counted %d, want %d", got, len(cases))
	}
	if n := len(h.Dump(t, abi.MapCT4)) + len(h.Dump(t, abi.MapCTAny4)); n != 0 {
		t.Errorf("malformed packets created %d CT entries", n)
	}

	arp := append([]byte(nil), good...)
	arp[12], arp[13] = 0x08, 0x06
	if code := run(t, h, in, arp); code != 0 {
		t.Errorf("ARP verdict %d, want pass", code)
	}
	if got := h.Metric(t, abi.AbiHpReasonHP_R_PASS_OTHER, in).Packets; got != 1 {
		t.Errorf("pass_other %d, want 1", got)
	}
}

// TestPrivilegedCTStageAccountingOff: with accounting off an entry tracks
// the connection as before (flags, lifetimes, both directions) but its
// packet and byte counters stay 0, so an established flow never writes it.
func TestPrivilegedCTStageAccountingOff(t *testing.T) {
	h := plugintest.New(t)
	cfg := DefaultConfig()
	cfg.Accounting = false
	prog, _, err := LoadStage(h.Layout, 1, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	h.Install(t, map[abi.Slot]*ebpf.Program{abi.AbiHpSlotHP_SLOT_CT: prog})
	key := tuple(client, server, packet.ProtoTCP, abi.TupleOut)

	for _, s := range []struct {
		dir abi.AbiHpDir
		pkt []byte
	}{
		{in, packet.TCP(client, server, packet.SYN, nil)},
		{out, packet.TCP(server, client, packet.SYN|packet.ACK, nil)},
		{in, packet.TCP(client, server, packet.ACK|packet.PSH, make([]byte, 1000))},
		{out, packet.TCP(server, client, packet.ACK, nil)},
	} {
		if code := run(t, h, s.dir, s.pkt); code != 0 {
			t.Fatalf("verdict %d, want pass", code)
		}
	}
	e := entry(t, h, abi.MapCT4, key)
	if e.Packets != 0 || e.Bytes != 0 {
		t.Errorf("counters %d/%d with accounting off, want 0/0", e.Packets, e.Bytes)
	}
	if e.Flags&abi.CTSeenNonSyn == 0 || e.TxFlagsSeen != packet.SYN|packet.ACK|packet.PSH || e.RxFlagsSeen != packet.SYN|packet.ACK {
		t.Errorf("tracking without accounting: flags %#x, tx seen %#x, rx seen %#x", e.Flags, e.TxFlagsSeen, e.RxFlagsSeen)
	}
	if left := int64(e.Lifetime) - int64(nowSec()); left < 21590 {
		t.Errorf("established lifetime %ds left, want ~21600", left)
	}
	if n := len(h.Dump(t, abi.MapCT4)); n != 1 {
		t.Errorf("%d entries, want 1 (the reply found the entry)", n)
	}
}

// status runs pkt through the ct stage alone at dir and returns the status
// it left in the packet's context.
func status(t *testing.T, h *plugintest.Harness, prog *ebpf.Program, dir abi.AbiHpDir, pkt []byte) abi.AbiHpCtStatus {
	t.Helper()
	_, left, err := h.RunStage(prog, plugintest.Context(dir, pkt), pkt)
	if err != nil {
		t.Fatal(err)
	}
	return abi.AbiHpCtStatus(left.CtStatus)
}

// TestPrivilegedCTStageSYNIsNeverAReply: a SYN on a tuple tracked the other
// way round opens a connection of its own (NEW, its own entry), where it
// used to count as a reply of the old one, which policy admits without a
// rule. Its SYN-ACK is the reply of the new entry, and a SYN-ACK, ACK or
// data packet the other way still finds the reply of its connection.
func TestPrivilegedCTStageSYNIsNeverAReply(t *testing.T) {
	h, prog := newStageProg(t)
	run(t, h, in, packet.TCP(client, server, packet.SYN, nil))
	if st := status(t, h, prog, out, packet.TCP(server, client, packet.SYN|packet.ACK, nil)); st != abi.AbiHpCtStatusHP_CT_REPLY {
		t.Fatalf("SYN-ACK: status %d, want reply", st)
	}
	if st := status(t, h, prog, out, packet.TCP(server, client, packet.ACK, nil)); st != abi.AbiHpCtStatusHP_CT_REPLY {
		t.Fatalf("server's ACK: status %d, want reply", st)
	}

	// The server opens a connection on the same tuple reversed.
	if st := status(t, h, prog, in, packet.TCP(server, client, packet.SYN, nil)); st != abi.AbiHpCtStatusHP_CT_NEW {
		t.Fatalf("SYN on the reversed tuple: status %d, want new", st)
	}
	rev := entry(t, h, abi.MapCT4, tuple(server, client, packet.ProtoTCP, abi.TupleOut))
	if rev.Packets != 1 {
		t.Fatalf("the reversed connection's entry counts %d packets, want 1", rev.Packets)
	}
	if st := status(t, h, prog, out, packet.TCP(client, server, packet.SYN|packet.ACK, nil)); st != abi.AbiHpCtStatusHP_CT_REPLY {
		t.Fatalf("its SYN-ACK: status %d, want reply", st)
	}
	if rev = entry(t, h, abi.MapCT4, tuple(server, client, packet.ProtoTCP, abi.TupleOut)); rev.Packets != 2 {
		t.Fatalf("its SYN-ACK counted %d packets on the new entry, want 2", rev.Packets)
	}
	if n := len(h.Dump(t, abi.MapCT4)); n != 2 {
		t.Fatalf("%d entries, want 2 (one per connection)", n)
	}

	// A SYN-ACK nobody's SYN asked for is tracked as seen.
	lone := netip.MustParseAddrPort("10.240.3.3:443")
	if st := status(t, h, prog, in, packet.TCP(lone, client, packet.SYN|packet.ACK, nil)); st != abi.AbiHpCtStatusHP_CT_NEW {
		t.Fatalf("lone SYN-ACK: status %d, want new", st)
	}
	if st := status(t, h, prog, in, packet.TCP(lone, client, packet.SYN|packet.ACK, nil)); st != abi.AbiHpCtStatusHP_CT_ESTABLISHED {
		t.Fatalf("lone SYN-ACK again: status %d, want established", st)
	}
}
