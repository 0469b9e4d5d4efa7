package entry_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/entry"
	"github.com/hotpath/hotpath/core/plugintest"
	"github.com/hotpath/hotpath/core/plugintest/packet"
	"github.com/hotpath/hotpath/lab"
)

const (
	seen       = uint32(abi.AbiHpMarkConstHP_MARK_SEEN)
	redirected = 7
)

var (
	client   = netip.MustParseAddrPort("10.240.1.2:40000")
	neighMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
)

// fwdHarness runs the forward stage alone, in a namespace of the test's own
// where up0 (192.0.2.1/24) has a resolved neighbour 192.0.2.2, and
// 198.51.100.0/24 is routed out of up0 with an MTU of 1000 (neighbour
// 198.51.100.5 resolved). Packets enter on loopback.
func fwdHarness(t *testing.T) (*plugintest.Harness, int) {
	lab.Privileged(t)
	plugintest.Netns(t)
	up := plugintest.Device(t, "up0", netip.MustParsePrefix("192.0.2.1/24"))
	for _, ip := range []string{"192.0.2.2", "198.51.100.5"} {
		n := &netlink.Neigh{LinkIndex: up, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT, IP: net.ParseIP(ip), HardwareAddr: neighMAC}
		if err := netlink.NeighAdd(n); err != nil {
			t.Fatalf("neighbour %s: %v", ip, err)
		}
	}
	_, dst, _ := net.ParseCIDR("198.51.100.0/24")
	if err := netlink.RouteAdd(&netlink.Route{LinkIndex: up, Dst: dst, MTU: 1000, Scope: netlink.SCOPE_LINK}); err != nil {
		t.Fatalf("route with mtu: %v", err)
	}
	_, unreach, _ := net.ParseCIDR("203.0.113.9/32")
	if err := netlink.RouteAdd(&netlink.Route{Dst: unreach, Type: unix.RTN_UNREACHABLE}); err != nil {
		t.Fatalf("unreachable route: %v", err)
	}
	h := plugintest.New(t)
	h.InstallHooks(t, map[abi.Slot]*ebpf.Program{abi.AbiHpSlotHP_SLOT_FORWARD: h.Entry.Forward},
		map[string][]string{abi.SlotName(abi.AbiHpSlotHP_SLOT_FORWARD): {"ingress"}})
	h.SetFlags(uint32(abi.AbiHpConfigFlagHP_CFG_DIRECT_REDIRECT), 0)
	if err := h.Entry.SetRouteMTUs(map[netip.Prefix]uint32{netip.MustParsePrefix("198.51.100.0/24"): 1000}); err != nil {
		t.Fatal(err)
	}
	return h, up
}

// withTTL sets a packet's TTL, fixing its IP checksum.
func withTTL(p []byte, ttl byte) []byte {
	p[22] = ttl
	binary.BigEndian.PutUint16(p[24:], 0)
	var sum uint32
	for i := 14; i < 34; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(p[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(p[24:], ^uint16(sum))
	return p
}

// TestPrivilegedForwardStage: where the next hop is a known neighbour of a
// device of ours the stage redirects (into a pod: its MACs rewritten, the
// mark cleared; out of a device: the kernel fills L2, the mark tells the
// egress hook to let it go), with the TTL decremented and the checksum
// right; everything else is left to the kernel, marked, untouched.
func TestPrivilegedForwardStage(t *testing.T) {
	h, up := fwdHarness(t)
	link, err := netlink.LinkByIndex(up)
	if err != nil {
		t.Fatal(err)
	}
	upMAC := link.Attrs().HardwareAddr
	syn := func(dst string, payload int) []byte {
		return packet.TCP(client, netip.MustParseAddrPort(dst), packet.SYN, make([]byte, payload))
	}
	for _, c := range []struct {
		name    string
		kind    uint32 // of up0
		off     bool   // direct redirects off
		pkt     []byte
		code    uint32
		ttl     byte
		mark    uint32
		stat    string
		peerMAC bool
	}{
		{name: "neighbour out of a device", kind: entry.KindNeigh, pkt: syn("192.0.2.2:80", 0), code: redirected, ttl: 63, mark: seen, stat: "neigh"},
		{name: "into a pod", kind: entry.KindPeer, pkt: syn("192.0.2.2:80", 0), code: redirected, ttl: 63, mark: 0, stat: "peer", peerMAC: true},
		{name: "device without hotpath", kind: 0, pkt: syn("192.0.2.2:80", 0), code: 0, ttl: 64, mark: seen, stat: "unmanaged"},
		{name: "expires here", kind: entry.KindNeigh, pkt: withTTL(syn("192.0.2.2:80", 0), 1), code: 0, ttl: 1, mark: seen, stat: "ttl"},
		{name: "neighbour unresolved", kind: entry.KindNeigh, pkt: syn("192.0.2.3:80", 0), code: 0, ttl: 64, mark: seen, stat: "no_neigh"},
		{name: "for this node", kind: entry.KindNeigh, pkt: syn("192.0.2.1:80", 0), code: 0, ttl: 64, mark: 0, stat: "not_forwarded"},
		{name: "no route", kind: entry.KindNeigh, pkt: syn("203.0.113.1:80", 0), code: 0, ttl: 64, mark: 0, stat: "not_forwarded"},
		{name: "unreachable", kind: entry.KindNeigh, pkt: syn("203.0.113.9:80", 0), code: 0, ttl: 64, mark: seen, stat: "no_route"},
		{name: "fits the route's mtu", kind: entry.KindNeigh, pkt: syn("198.51.100.5:80", 900), code: redirected, ttl: 63, mark: seen, stat: "neigh"},
		{name: "too big for the route's mtu", kind: entry.KindNeigh, pkt: syn("198.51.100.5:80", 1200), code: 0, ttl: 64, mark: seen, stat: "frag_needed"},
		{name: "redirects off", kind: entry.KindNeigh, off: true, pkt: syn("192.0.2.2:80", 0), code: 0, ttl: 64, mark: seen, stat: "off"},
	} {
		// Not t.Run: a subtest runs on another thread, outside the
		// namespace of Netns.
		func() {
			if err := h.Entry.SetDevice(up, c.kind); err != nil {
				t.Fatal(err)
			}
			if c.off {
				h.SetFlags(0, uint32(abi.AbiHpConfigFlagHP_CFG_DIRECT_REDIRECT))
				defer h.SetFlags(uint32(abi.AbiHpConfigFlagHP_CFG_DIRECT_REDIRECT), 0)
			}
			before, _ := h.Entry.ForwardStats()
			r, err := h.RunOn(plugintest.Ingress, 0, seen, c.pkt) // a mark brought in is not trusted
			if err != nil {
				t.Fatal(err)
			}
			after, _ := h.Entry.ForwardStats()
			if r.Code != c.code || r.Packet[22] != c.ttl || r.Mark&seen != c.mark || !packet.Valid(r.Packet) {
				t.Errorf("%s: code %d, ttl %d, mark %#x, valid %v; want code %d, ttl %d, mark %#x, valid",
					c.name, r.Code, r.Packet[22], r.Mark, packet.Valid(r.Packet), c.code, c.ttl, c.mark)
			}
			if after[c.stat] != before[c.stat]+1 {
				t.Errorf("%s: counter %s went %d -> %d, want +1", c.name, c.stat, before[c.stat], after[c.stat])
			}
			if c.peerMAC && (!bytes.Equal(r.Packet[0:6], neighMAC) || !bytes.Equal(r.Packet[6:12], upMAC)) {
				t.Errorf("%s: into a pod with MACs %x -> %x, want %s -> %s", c.name, r.Packet[6:12], r.Packet[0:6], upMAC, neighMAC)
			}
		}()
	}
}

// TestPrivilegedEgressSkipsProcessed: at an egress hook a packet marked at
// ingress passes with its mark cleared and is not counted again; an
// unmarked one (the node's own) runs the pipeline.
func TestPrivilegedEgressSkipsProcessed(t *testing.T) {
	h, _ := fwdHarness(t)
	pkt := packet.TCP(client, netip.MustParseAddrPort("192.0.2.2:80"), packet.ACK, nil)
	fwd := abi.AbiHpReasonHP_R_FORWARD
	before := h.Metric(t, fwd, plugintest.Egress).Packets
	r, err := h.RunOn(plugintest.Egress, 0, seen|0x1, pkt)
	if err != nil {
		t.Fatal(err)
	}
	if r.Code != 0 || r.Mark != 0x1 {
		t.Errorf("processed packet at egress: code %d, mark %#x; want 0 and only the foreign bit 0x1 left", r.Code, r.Mark)
	}
	if n := h.Metric(t, fwd, plugintest.Egress).Packets; n != before {
		t.Errorf("processed packet counted again at egress (%d -> %d)", before, n)
	}
	if _, err := h.RunOn(plugintest.Egress, 0, 0, pkt); err != nil {
		t.Fatal(err)
	}
	if n := h.Metric(t, fwd, plugintest.Egress).Packets; n != before+1 {
		t.Errorf("the node's own packet: egress count %d -> %d, want +1", before, n)
	}
}

// TestPrivilegedSetDevicesForgetsOthers: a device a previous supervisor
// knew stops being a redirect target (a new device may reuse its index).
func TestPrivilegedSetDevicesForgetsOthers(t *testing.T) {
	lab.Privileged(t)
	h := plugintest.New(t)
	if err := h.Entry.SetDevice(999, entry.KindPeer); err != nil {
		t.Fatal(err)
	}
	if err := h.Entry.SetDevices(map[int]uint32{7: entry.KindNeigh}); err != nil {
		t.Fatal(err)
	}
	var kind uint32
	if err := h.Entry.Devices.Lookup(uint32(999), &kind); err == nil {
		t.Errorf("device 999 still a redirect target (kind %d)", kind)
	}
	if err := h.Entry.Devices.Lookup(uint32(7), &kind); err != nil || kind != entry.KindNeigh {
		t.Errorf("device 7: kind %d, %v; want %d", kind, err, entry.KindNeigh)
	}
}

// TestPrivilegedForwardRemembersHops: the forward stage remembers a next
// hop and keeps using it while nothing says the routing changed; forgetting
// (what the supervisor does on every routing notification) or a new second
// makes the next packet follow the FIB again, and with hops off (a node
// with routing rules of its own) every packet follows it.
func TestPrivilegedForwardRemembersHops(t *testing.T) {
	h, up := fwdHarness(t)
	if err := h.Entry.SetDevice(up, entry.KindNeigh); err != nil {
		t.Fatal(err)
	}
	pkt := packet.TCP(client, netip.MustParseAddrPort("192.0.2.2:80"), packet.ACK, nil)
	send := func(step, wantStat string) {
		t.Helper()
		before, _ := h.Entry.ForwardStats()
		if _, err := h.RunOn(plugintest.Ingress, 0, 0, append([]byte(nil), pkt...)); err != nil {
			t.Fatal(err)
		}
		after, _ := h.Entry.ForwardStats()
		if after[wantStat] != before[wantStat]+1 {
			t.Errorf("%s: counters %v -> %v, want %s +1", step, before, after, wantStat)
		}
	}
	_, dst, _ := net.ParseCIDR("192.0.2.2/32")
	unreachable := &netlink.Route{Dst: dst, Type: unix.RTN_UNREACHABLE}
	blackholed := func(on bool) {
		t.Helper()
		var err error
		if on {
			err = netlink.RouteAdd(unreachable)
		} else {
			err = netlink.RouteDel(unreachable)
		}
		if err != nil {
			t.Fatalf("route %v: %v", on, err)
		}
	}

	// A hop serves within the second it was looked up in: start at the
	// beginning of one, so the steps up to the first timed-out one fit.
	startOfSecond(t)
	send("first packet (FIB)", "neigh")
	if n := countHops(t, h.Entry.Hops); n != 1 {
		t.Fatalf("%d hops remembered after the first packet, want 1", n)
	}
	blackholed(true)
	send("route changed, not yet told: remembered hop", "neigh")
	if err := h.Entry.ForgetHops(); err != nil {
		t.Fatal(err)
	}
	send("told: FIB again", "no_route")

	blackholed(false)
	if err := h.Entry.ForgetHops(); err != nil {
		t.Fatal(err)
	}
	send("route back", "neigh")
	blackholed(true)
	time.Sleep(1100 * time.Millisecond)
	send("not told, from an earlier second: FIB again", "no_route")

	blackholed(false)
	if err := h.Entry.SetHopsOff(true); err != nil {
		t.Fatal(err)
	}
	send("hops off", "neigh")
	blackholed(true)
	send("hops off, route changed: FIB", "no_route")
	if off, err := h.Entry.HopsOff(); err != nil || !off {
		t.Errorf("HopsOff() = %v, %v; want true", off, err)
	}
}

// startOfSecond waits until the datapath's clock (ctmap.Now, what hp_now
// reads) has just entered a new second.
func startOfSecond(t *testing.T) {
	t.Helper()
	for s := ctmap.Now(); ctmap.Now() == s; {
		time.Sleep(time.Millisecond)
	}
}

func countHops(t *testing.T, m *ebpf.Map) int {
	t.Helper()
	var k, v []byte
	n := 0
	it := m.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}
