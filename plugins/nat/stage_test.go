package nat_test

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/natmap"
	"github.com/hotpath/hotpath/core/plugintest"
	"github.com/hotpath/hotpath/core/plugintest/packet"
	"github.com/hotpath/hotpath/plugins/nat"
)

const ingress = abi.AbiHpDirHP_DIR_INGRESS

var (
	node   = netip.MustParseAddr("192.0.2.1")
	remote = netip.MustParseAddrPort("192.0.2.2:80")
	pod1   = netip.MustParseAddrPort("10.240.1.2:40000")
	pod2   = netip.MustParseAddrPort("10.240.2.2:40000")
	pod3   = netip.MustParseAddrPort("10.240.3.2:40000")
)

// stages loads both nat stages into a BPF_PROG_TEST_RUN harness, in a
// network namespace of the test's own where the device up0
// (192.0.2.1/24) stands in for the uplink: pods' packets enter on loopback
// (out), replies on up0 (in). 10.240.0.0/16 is the cluster;
// 192.0.2.128/25 is excluded.
func stages(t *testing.T, lo, hi uint16) *plugintest.Harness {
	t.Helper()
	plugintest.Netns(t)
	upIdx = plugintest.Device(t, "up0", netip.MustParsePrefix("192.0.2.1/24"))
	h := plugintest.New(t)
	s := nat.Settings{
		Device: "up0", Ifindex: upIdx, Addr: node, Cluster: []netip.Prefix{netip.MustParsePrefix("10.240.0.0/16")},
		Exclude: []netip.Prefix{netip.MustParsePrefix("192.0.2.128/25")},
		PortMin: lo, PortMax: hi, NodePortMin: 30000, NodePortMax: 32767, Tries: 128,
	}
	pins, err := nat.LoadStages(h.Layout, 1, s)
	if err != nil {
		t.Fatal(err)
	}
	progs := map[abi.Slot]*ebpf.Program{}
	for slot, path := range pins {
		p, err := ebpf.LoadPinnedProgram(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		id, _ := abi.ParseSlot(slot)
		progs[id] = p
	}
	h.InstallHooks(t, progs, nat.Hooks)
	return h
}

// upIdx is up0's ifindex in the namespace of the running test.
var upIdx int

// redirected is TC_ACT_REDIRECT: a masqueraded packet is sent out of the
// masquerade device by the stage itself.
const redirected = 7

// out sends a pod's packet as it enters the node (ingress of a pod device).
func out(t *testing.T, h *plugintest.Harness, pkt []byte) plugintest.Result {
	t.Helper()
	r, err := h.RunOn(ingress, 0, 0, pkt)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// in sends a packet arriving on the uplink (its ingress hook).
func in(t *testing.T, h *plugintest.Harness, pkt []byte) plugintest.Result {
	t.Helper()
	r, err := h.RunOn(ingress, upIdx, 0, pkt)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// liveCT gives a flow the CT entry the ct stage would have created where it
// left the node, expiring at lifetime.
func liveCT(t *testing.T, h *plugintest.Harness, pod, dst netip.AddrPort, proto uint8, lifetime uint32) {
	t.Helper()
	m := h.Maps[abi.MapCTAny4]
	if proto == packet.ProtoTCP {
		m = h.Maps[abi.MapCT4]
	}
	k := abi.CTTuple{Saddr: natmap.Addr4(pod.Addr()), Sport: natmap.Port(pod.Port()), Daddr: natmap.Addr4(dst.Addr()),
		Dport: natmap.Port(dst.Port()), Nexthdr: proto, Flags: abi.TupleIn}
	if err := m.Put(&k, &abi.CTEntry{Packets: 1, Lifetime: lifetime}); err != nil {
		t.Fatal(err)
	}
}

func TestPrivilegedNATStageTranslatesBothWaysWithValidChecksums(t *testing.T) {
	h := stages(t, 40000, 40999)
	syn := out(t, h, packet.TCP(pod1, remote, packet.SYN, nil))
	src, dst := packet.Addrs(syn.Packet)
	if syn.Code != redirected || src.Addr() != node || src.Port() < 40000 || src.Port() > 40999 || dst != remote || !packet.Valid(syn.Packet) {
		t.Fatalf("SYN left as %s -> %s (code %d, valid %v)", src, dst, syn.Code, packet.Valid(syn.Packet))
	}
	if ttl := syn.Packet[14+8]; ttl != 63 {
		t.Errorf("SYN left with TTL %d, want 63 (forwarded once)", ttl)
	}
	back := in(t, h, packet.TCP(remote, src, packet.SYN|packet.ACK, nil))
	bs, bd := packet.Addrs(back.Packet)
	if back.Code != 0 || bs != remote || bd != pod1 || !packet.Valid(back.Packet) {
		t.Fatalf("SYN-ACK arrived as %s -> %s (code %d, valid %v), want %s -> %s", bs, bd, back.Code, packet.Valid(back.Packet), remote, pod1)
	}
	// The same flow keeps its port; a flow to elsewhere in the cluster and
	// one from outside the cluster are left alone.
	if again, _ := packet.Addrs(out(t, h, packet.TCP(pod1, remote, packet.ACK, nil)).Packet); again != src {
		t.Errorf("second packet left as %s, first as %s", again, src)
	}
	inCluster := netip.MustParseAddrPort("10.240.9.9:80")
	if s, _ := packet.Addrs(out(t, h, packet.TCP(pod1, inCluster, packet.SYN, nil)).Packet); s != pod1 {
		t.Errorf("in-cluster destination masqueraded: left as %s", s)
	}
	excluded := netip.MustParseAddrPort("192.0.2.200:80")
	if s, _ := packet.Addrs(out(t, h, packet.TCP(pod1, excluded, packet.SYN, nil)).Packet); s != pod1 {
		t.Errorf("a destination in exclude_cidrs was masqueraded: left as %s", s)
	}
	outside := netip.MustParseAddrPort("198.51.100.7:5000")
	if s, _ := packet.Addrs(out(t, h, packet.TCP(outside, remote, packet.SYN, nil)).Packet); s != outside {
		t.Errorf("a source outside the cluster was masqueraded: left as %s", s)
	}
}

// icmpError builds "port unreachable" from router to node, quoting the
// first 8 bytes of the UDP datagram that left as quoted.
func icmpError(router netip.Addr, quoted []byte) []byte {
	inner := quoted[14 : 14+20+8]
	body := make([]byte, 8+len(inner))
	body[0], body[1] = 3, 3
	copy(body[8:], inner)
	binary.BigEndian.PutUint16(body[2:], icmpChecksum(body))
	return packet.Raw(router, node, packet.ProtoICMP, body)
}

func TestPrivilegedNATStageICMPErrorReachesThePod(t *testing.T) {
	h := stages(t, 40000, 40999)
	dns := netip.MustParseAddrPort("192.0.2.53:53")
	left := out(t, h, packet.UDP(pod1, dns, []byte("query"))).Packet
	leftSrc, _ := packet.Addrs(left)
	router := netip.MustParseAddr("192.0.2.254")
	r := in(t, h, icmpError(router, left))
	p := r.Packet
	outer := p[14:34]
	inner := p[42:62]
	if r.Code != 0 || netip.AddrFrom4([4]byte(outer[16:20])) != pod1.Addr() {
		t.Fatalf("ICMP error (code %d) went to %v, want %s", r.Code, netip.AddrFrom4([4]byte(outer[16:20])), pod1.Addr())
	}
	if got := netip.AddrPortFrom(netip.AddrFrom4([4]byte(inner[12:16])), binary.BigEndian.Uint16(p[62:])); got != pod1 {
		t.Errorf("quoted source %s (left as %s), want %s", got, leftSrc, pod1)
	}
	if icmpChecksum(outer) != 0 || icmpChecksum(inner) != 0 || icmpChecksum(p[34:]) != 0 {
		t.Errorf("checksums: outer IP %#x, quoted IP %#x, ICMP %#x; want 0 each", icmpChecksum(outer), icmpChecksum(inner), icmpChecksum(p[34:]))
	}
	var per []uint64
	idx := uint32(5) // NAT_S_ICMP_ERROR
	priv, err := nat.OpenPrivate(h.Layout)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, m := range priv {
			m.Close()
		}
	}()
	if err := priv["nat_stats"].Lookup(&idx, &per); err != nil {
		t.Fatal(err)
	}
	n := uint64(0)
	for _, v := range per {
		n += v
	}
	if n != 1 {
		t.Errorf("icmp error counter %d, want 1", n)
	}
}

// TestPrivilegedNATStageExhaustionAndTakeOver: two ports, two flows with
// live CT entries: a third flow is dropped as exhaustion and signalled on
// the ring buffer; once the first flow's CT entry has expired, the third
// flow takes its port over at once (no GC involved) and the first flow's
// egress entry is gone.
func TestPrivilegedNATStageExhaustionAndTakeOver(t *testing.T) {
	h := stages(t, 40000, 40001)
	now := ctmap.Now()
	var ports []netip.AddrPort
	for _, pod := range []netip.AddrPort{pod1, pod2} {
		liveCT(t, h, pod, remote, packet.ProtoTCP, now+100)
		src, _ := packet.Addrs(out(t, h, packet.TCP(pod, remote, packet.SYN, nil)).Packet)
		ports = append(ports, src)
	}
	if ports[0] == ports[1] {
		t.Fatalf("two flows share %s", ports[0])
	}
	priv, err := nat.OpenPrivate(h.Layout)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, m := range priv {
			m.Close()
		}
	}()
	rd, err := ringbuf.NewReader(priv["nat_signal"])
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()

	liveCT(t, h, pod3, remote, packet.ProtoTCP, now+100)
	if r := out(t, h, packet.TCP(pod3, remote, packet.SYN, nil)); r.Code != 2 {
		t.Fatalf("third flow on two ports: code %d, want a drop", r.Code)
	}
	if m := h.Metric(t, abi.AbiHpReasonHP_R_NAT_EXHAUSTED, ingress); m.Packets != 1 {
		t.Errorf("nat_exhausted counted %d, want 1", m.Packets)
	}
	rd.SetDeadline(time.Now().Add(time.Second))
	if _, err := rd.Read(); err != nil {
		t.Errorf("no exhaustion signal on the ring buffer: %v", err)
	}

	liveCT(t, h, pod1, remote, packet.ProtoTCP, now-1) // closed and past its close lifetime
	r := out(t, h, packet.TCP(pod3, remote, packet.SYN, nil))
	if src, _ := packet.Addrs(r.Packet); r.Code != redirected || src != ports[0] {
		t.Fatalf("third flow after the first ended: code %d, left as %s, want %s", r.Code, src, ports[0])
	}
	back := in(t, h, packet.TCP(remote, ports[0], packet.SYN|packet.ACK, nil))
	if _, d := packet.Addrs(back.Packet); d != pod3 {
		t.Errorf("reply to the taken-over port went to %s, want %s", d, pod3)
	}
	k := abi.NAT4Key{Saddr: natmap.Addr4(pod1.Addr()), Sport: natmap.Port(pod1.Port()), Daddr: natmap.Addr4(remote.Addr()),
		Dport: natmap.Port(remote.Port()), Nexthdr: packet.ProtoTCP, Dir: abi.NATEgress}
	var v abi.NAT4Entry
	if err := h.Maps[abi.MapNAT4].Lookup(&k, &v); err == nil {
		t.Errorf("the ended flow's egress entry survived the take-over: %+v", v)
	}
}

// TestPrivilegedNATStageSkipsNodePortsWithoutPilingUp: a range that is
// mostly NodePorts hands out only the ports above them, and flows whose
// hash lands among the NodePorts do not pile up at the region's end (which
// would make every new flow probe all of them and run out of tries).
func TestPrivilegedNATStageSkipsNodePortsWithoutPilingUp(t *testing.T) {
	h := stages(t, 32000, 33023) // 768 NodePorts, 256 free ports
	priv, err := nat.OpenPrivate(h.Layout)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, m := range priv {
			m.Close()
		}
	}()
	s := nat.Settings{NodePortMin: 30000, NodePortMax: 32767}
	if _, err := nat.WriteBitmap(priv["nat_excl"], nat.Exclusions(s, nil)); err != nil {
		t.Fatal(err)
	}
	seen := map[uint16]bool{}
	now := ctmap.Now()
	for i := 0; i < 128; i++ {
		p := netip.AddrPortFrom(pod1.Addr(), uint16(20000+i))
		liveCT(t, h, p, remote, packet.ProtoTCP, now+100)
		r := out(t, h, packet.TCP(p, remote, packet.SYN, nil))
		src, _ := packet.Addrs(r.Packet)
		if r.Code != redirected || src.Port() < 32768 || src.Port() > 33023 || seen[src.Port()] {
			t.Fatalf("flow %d: code %d, left as %s (ports so far %d)", i, r.Code, src, len(seen))
		}
		seen[src.Port()] = true
	}
	var per []uint64
	idx := uint32(1) // NAT_S_COLLISION
	if err := priv["nat_stats"].Lookup(&idx, &per); err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	// 128 flows on 256 free ports: linear probing from random starts
	// collides a few hundred times at most; a pile-up at 32768 makes it
	// several thousand.
	if n > 400 {
		t.Errorf("%d probe collisions for 128 flows on 256 free ports", n)
	}
	t.Logf("%d probe collisions", n)
}
