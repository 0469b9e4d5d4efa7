package ct

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/plugintest"
	"github.com/hotpath/hotpath/core/plugintest/packet"
)

// left is the seconds an entry has to live.
func left(e abi.CTEntry) int64 { return int64(e.Lifetime) - int64(nowSec()) }

func wantLeft(t *testing.T, what string, e abi.CTEntry, lo, hi int64) {
	t.Helper()
	if l := left(e); l < lo || l > hi {
		t.Fatalf("%s: %ds left (flags %#x), want %d..%d", what, l, e.Flags, lo, hi)
	}
}

// Cilium's TCP lifetimes: SYN lifetime until a packet without SYN, then the
// TCP one; a FIN closes its direction only; both closed is dead: the close
// lifetime, which later packets do not extend, but a retransmitted FIN
// re-arms.
func TestPrivilegedCTStageTCPLifetimes(t *testing.T) {
	h := newStage(t)
	key := tuple(client, server, packet.ProtoTCP, abi.TupleOut)
	get := func() abi.CTEntry { return entry(t, h, abi.MapCT4, key) }

	run(t, h, in, packet.TCP(client, server, packet.SYN, nil))
	wantLeft(t, "after SYN", get(), 58, 61)
	run(t, h, out, packet.TCP(server, client, packet.SYN|packet.ACK, nil))
	wantLeft(t, "after SYN-ACK", get(), 58, 61)
	run(t, h, in, packet.TCP(client, server, packet.ACK, nil))
	wantLeft(t, "established", get(), 21598, 21601)

	run(t, h, in, packet.TCP(client, server, packet.FIN|packet.ACK, nil))
	e := get()
	if e.Flags&(abi.CTTxClosing|abi.CTRxClosing) != abi.CTTxClosing {
		t.Fatalf("after the client's FIN: flags %#x, want TxClosing only", e.Flags)
	}
	wantLeft(t, "half closed", e, 21598, 21601)
	// The server keeps sending on its half: the entry lives on.
	run(t, h, out, packet.TCP(server, client, packet.ACK, []byte("more")))
	wantLeft(t, "half closed, data", get(), 21598, 21601)

	run(t, h, out, packet.TCP(server, client, packet.FIN|packet.ACK, nil))
	e = get()
	if e.Flags&(abi.CTTxClosing|abi.CTRxClosing) != abi.CTTxClosing|abi.CTRxClosing {
		t.Fatalf("after both FINs: flags %#x", e.Flags)
	}
	wantLeft(t, "closed", e, 8, 11)

	// The last ACK (and anything later) does not refresh a dead entry.
	e.Lifetime = nowSec() + 3
	if err := h.Maps[abi.MapCT4].Put(key, e); err != nil {
		t.Fatal(err)
	}
	run(t, h, in, packet.TCP(client, server, packet.ACK, nil))
	run(t, h, out, packet.TCP(server, client, packet.ACK, []byte("late")))
	wantLeft(t, "dead after ACKs", get(), 1, 3)
	// A retransmitted FIN re-arms the close lifetime.
	run(t, h, out, packet.TCP(server, client, packet.FIN|packet.ACK, nil))
	wantLeft(t, "dead after a retransmitted FIN", get(), 8, 11)
	if got := get().Packets; got != 9 {
		t.Fatalf("entry counted %d packets, want 9 (dead entries still count)", got)
	}
}

// An RST that matches no entry opens nothing: no entry is created (as the
// kernel's conntrack), so stray or generated RSTs cannot fill ct4. A FIN
// that opens an entry (a connection picked up mid-stream) closes only its
// own direction.
func TestPrivilegedCTStageLoneRSTAndFIN(t *testing.T) {
	h := newStage(t)
	if code := run(t, h, in, packet.TCP(client, server, packet.RST|packet.ACK, nil)); code != 0 {
		t.Fatalf("lone RST: verdict %d, want pass", code)
	}
	if n := len(h.Dump(t, abi.MapCT4)); n != 0 {
		t.Fatalf("a lone RST created %d entries", n)
	}
	run(t, h, in, packet.TCP(client, server, packet.FIN|packet.ACK, nil))
	e := entry(t, h, abi.MapCT4, tuple(client, server, packet.ProtoTCP, abi.TupleOut))
	if e.Flags&(abi.CTTxClosing|abi.CTRxClosing) != abi.CTTxClosing {
		t.Fatalf("FIN entry flags %#x, want TxClosing", e.Flags)
	}
}

// Packets the pipeline does not handle are each counted under their own
// reason and passed untouched; IPv4 BIG TCP (total length 0 on a GSO packet)
// is parsed, not an error.
func TestPrivilegedParseReasons(t *testing.T) {
	h := newStage(t)
	good := packet.TCP(client, server, packet.SYN, nil)

	v6 := append([]byte(nil), good...)
	v6[12], v6[13] = 0x86, 0xdd
	vlan := append(append(append([]byte(nil), good[:12]...), 0x81, 0x00, 0x00, 0x07), good[12:]...)
	qinq := append([]byte(nil), vlan...)
	qinq[12], qinq[13] = 0x88, 0xa8
	for _, c := range []struct {
		name   string
		pkt    []byte
		reason abi.Reason
		n      uint64
	}{
		{"ipv6", v6, abi.AbiHpReasonHP_R_PASS_IPV6, 1},
		{"802.1Q", vlan, abi.AbiHpReasonHP_R_PASS_VLAN, 1},
		{"802.1ad", qinq, abi.AbiHpReasonHP_R_PASS_VLAN, 2},
	} {
		r, err := h.Run(in, c.pkt)
		if err != nil {
			t.Fatal(err)
		}
		if r.Code != 0 || !bytes.Equal(r.Packet, c.pkt) {
			t.Fatalf("%s: verdict %d, changed %v", c.name, r.Code, !bytes.Equal(r.Packet, c.pkt))
		}
		if got := h.Metric(t, c.reason, in).Packets; got != c.n {
			t.Fatalf("%s: counted %d under %s, want %d", c.name, got, abi.ReasonName(c.reason), c.n)
		}
	}
	if n := len(h.Dump(t, abi.MapCT4)); n != 0 {
		t.Fatalf("untouched packets created %d CT entries", n)
	}

	big := append([]byte(nil), good...)
	big[16], big[17] = 0, 0
	r, err := runGSO(h, big, 1448)
	if err != nil {
		t.Fatal(err)
	}
	if r != 0 {
		t.Fatalf("BIG TCP packet: verdict %d, want pass", r)
	}
	if got := h.Metric(t, abi.AbiHpReasonHP_R_PARSE_ERROR, in).Packets; got != 0 {
		t.Fatalf("BIG TCP packet counted as parse error")
	}
	entry(t, h, abi.MapCT4, tuple(client, server, packet.ProtoTCP, abi.TupleOut))
	// Without GSO, total length 0 is malformed.
	if r, err := runGSO(h, big, 0); err != nil || r != 2 {
		t.Fatalf("total length 0 without GSO: verdict %d (%v), want drop", r, err)
	}
}

// runGSO runs pkt through the ingress entry with skb gso_size set, which
// BPF_PROG_TEST_RUN takes from the __sk_buff context.
func runGSO(h *plugintest.Harness, pkt []byte, gsoSize uint32) (uint32, error) {
	kspec, err := btf.LoadKernelSpec()
	if err != nil {
		return 0, err
	}
	var skb *btf.Struct
	if err := kspec.TypeByName("__sk_buff", &skb); err != nil {
		return 0, err
	}
	ctx := make([]byte, skb.Size)
	for _, m := range skb.Members {
		if m.Name == "gso_size" {
			binary.NativeEndian.PutUint32(ctx[m.Offset.Bytes():], gsoSize)
		}
	}
	return h.Entry.Ingress.Run(&ebpf.RunOptions{Data: pkt, Context: ctx})
}
