package tunnel_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/plugintest"
	"github.com/hotpath/hotpath/core/plugintest/packet"
	"github.com/hotpath/hotpath/plugins/tunnel"
)

const tcRedirect = 7

var (
	overlayMAC = net.HardwareAddr{0x02, 0x68, 0x70, 0x74, 0x6e, 0x6c}
	podA       = netip.MustParseAddrPort("10.240.1.2:40000")
	podB       = netip.MustParseAddrPort("10.241.1.2:7000")
)

// stage loads the tunnel stage into a BPF_PROG_TEST_RUN harness with the
// overlay device at ifindex (test runs arrive on ifindex 1) and a route
// 10.241.0.0/16 -> 198.51.100.2.
func stage(t *testing.T, ifindex int) *plugintest.Harness {
	t.Helper()
	h := plugintest.New(t)
	pins, err := tunnel.LoadStages(h.Layout, 1, tunnel.Settings{Device: "test", Ifindex: ifindex, MTU: 1450, MAC: overlayMAC})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ebpf.LoadPinnedProgram(pins[tunnel.SlotTunnel], nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	h.InstallHooks(t, map[abi.Slot]*ebpf.Program{abi.AbiHpSlotHP_SLOT_TUNNEL: p}, tunnel.Hooks)
	k := abi.AbiHpTunnelKey{Prefixlen: 16, Addr: binary.NativeEndian.Uint32([]byte{10, 241, 0, 0})}
	v := abi.AbiHpTunnelVal{Remote: binary.NativeEndian.Uint32([]byte{198, 51, 100, 2}), Vni: 7}
	if err := h.Maps[abi.MapTunnel4].Put(k, v); err != nil {
		t.Fatal(err)
	}
	return h
}

func run(t *testing.T, h *plugintest.Harness, pkt []byte) plugintest.Result {
	t.Helper()
	r, err := h.Run(plugintest.Ingress, pkt)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestPrivilegedStageEncap: a packet for a remote pod CIDR is redirected
// with its inner destination MAC set to the overlay device's; others pass
// untouched.
func TestPrivilegedStageEncap(t *testing.T) {
	h := stage(t, 1000)
	pkt := packet.UDP(podA, podB, []byte("hello"))
	r := run(t, h, pkt)
	if r.Code != tcRedirect {
		t.Fatalf("packet for a remote pod: tc code %d, want redirect", r.Code)
	}
	if !bytes.Equal(r.Packet[:6], overlayMAC) || !bytes.Equal(r.Packet[6:], pkt[6:]) {
		t.Errorf("encapsulated frame % x, want the overlay MAC as destination and nothing else changed", r.Packet[:14])
	}
	other := packet.UDP(podA, netip.MustParseAddrPort("10.242.0.1:53"), []byte("x"))
	if r := run(t, h, other); r.Code != 0 || !bytes.Equal(r.Packet, other) {
		t.Errorf("packet for an address without a route: code %d, changed %v", r.Code, !bytes.Equal(r.Packet, other))
	}
}

// TestPrivilegedStageFragNeeded: a DF packet too big for the overlay is
// turned into ICMP fragmentation needed (MTU 1450) sent back to its source;
// without DF it is encapsulated.
func TestPrivilegedStageFragNeeded(t *testing.T) {
	h := stage(t, 1000)
	big := packet.UDP(podA, podB, make([]byte, 1500-28))
	big[14+6] |= 0x40 // DF
	big[14+10], big[14+11] = 0, 0
	binary.BigEndian.PutUint16(big[14+10:], ipChecksum(big[14:34]))
	r := run(t, h, big)
	if r.Code != tcRedirect {
		t.Fatalf("DF packet too big: tc code %d, want redirect (the ICMP error back)", r.Code)
	}
	out := r.Packet
	if !packet.ICMPValid(out) || out[34] != 3 || out[35] != 4 || binary.BigEndian.Uint16(out[40:]) != 1450 {
		t.Fatalf("answer % x..., want a valid ICMP fragmentation needed with MTU 1450", out[:min(len(out), 48)])
	}
	src, dst := netip.AddrFrom4([4]byte(out[26:30])), netip.AddrFrom4([4]byte(out[30:34]))
	if dst != podA.Addr() || src != podB.Addr() {
		t.Errorf("ICMP error %s -> %s, want %s -> %s", src, dst, podB.Addr(), podA.Addr())
	}
	if m := h.Metric(t, abi.AbiHpReasonHP_R_FRAG_NEEDED, plugintest.Ingress); m.Packets != 1 {
		t.Errorf("frag_needed packets %d, want 1", m.Packets)
	}
	noDF := packet.UDP(podA, podB, make([]byte, 1500-28))
	if r := run(t, h, noDF); r.Code != tcRedirect || !bytes.Equal(r.Packet[:6], overlayMAC) {
		t.Errorf("big packet without DF: code %d, dst MAC % x, want encapsulated", r.Code, r.Packet[:6])
	}
}

// TestPrivilegedStageDecap: at the overlay device's own ingress the stage
// only counts; the packet goes on to the kernel.
func TestPrivilegedStageDecap(t *testing.T) {
	h := stage(t, 1) // test runs arrive on ifindex 1
	pkt := packet.UDP(netip.MustParseAddrPort("10.241.1.2:7000"), podA, []byte("back"))
	if r := run(t, h, pkt); r.Code != 0 || !bytes.Equal(r.Packet, pkt) {
		t.Errorf("decapsulated packet: code %d, changed %v, want passed untouched", r.Code, !bytes.Equal(r.Packet, pkt))
	}
	pkt = packet.UDP(podA, podB, []byte("loop"))
	if r := run(t, h, pkt); r.Code != 0 {
		t.Errorf("packet arriving on the overlay for a remote CIDR: code %d, want passed (never re-encapsulated)", r.Code)
	}
}

func ipChecksum(h []byte) uint16 {
	var s uint32
	for i := 0; i < len(h); i += 2 {
		s += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}
