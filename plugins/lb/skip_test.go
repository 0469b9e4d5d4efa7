package lb

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/plugintest/packet"
	"github.com/hotpath/hotpath/core/services"
)

// lastCtx is the packet context the pipeline left for the packet whose
// client port is port: BPF_PROG_TEST_RUN runs on this test's CPU, and the
// per-CPU context of that CPU holds the last packet it ran.
func lastCtx(t *testing.T, h *lbHarness, dir abi.AbiHpDir, port uint16) abi.Ctx {
	t.Helper()
	var ctxs []abi.Ctx
	if err := h.Maps[abi.MapPctx].Lookup(uint32(dir), &ctxs); err != nil {
		t.Fatal(err)
	}
	p := htons(port)
	for _, c := range ctxs {
		if c.Sport == p || c.Dport == p {
			return c
		}
	}
	t.Fatalf("no CPU's context holds the packet of client port %d", port)
	return abi.Ctx{}
}

// TestPrivilegedSkippedStagesAreNotEntered runs packets through the lb and
// ct stages installed at both hooks and reads back, from the packet's
// context, how many tail calls it made and which slot ran last: a flow to a
// VIP, new or established, is translated by lb alone (lb-select and lb-dnat
// are passed over: lb supplies the selection), a packet to a service never
// enters lb-revnat, nor does a packet of a flow nothing translated (ct
// passes over it), and every other packet still runs the stages it needs,
// with the same translation.
func TestPrivilegedSkippedStagesAreNotEntered(t *testing.T) {
	h := newLB(t)
	vip, be := ap("10.96.5.1:80"), ap("10.240.2.7:8080")
	h.add(t, services.ServiceAddArgs{VIP: vip.String() + "/tcp", Backends: backends(be.String())})
	client := ap("10.240.1.2:41001")
	other := ap("10.240.1.2:41002")
	plain := ap("10.240.2.9:8080")

	cases := []struct {
		name string
		dir  abi.AbiHpDir
		pkt  []byte
		port uint16
		hops uint8
		last abi.Slot
		src  netip.AddrPort // wanted source and destination after the pipeline
		dst  netip.AddrPort
	}{
		{"SYN to the VIP: lb chooses and translates (lb-select, lb-dnat passed over), then ct; not lb-revnat", in,
			packet.TCP(client, vip, packet.SYN, nil), client.Port(), 2, abi.AbiHpSlotHP_SLOT_CT, client, be},
		{"established to the VIP: lb translates, then ct", in,
			packet.TCP(client, vip, packet.ACK, []byte("x")), client.Port(), 2, abi.AbiHpSlotHP_SLOT_CT, client, be},
		{"reply from the backend: lb, ct, lb-revnat", out,
			packet.TCP(be, client, packet.ACK, []byte("y")), client.Port(), 3, abi.AbiHpSlotHP_SLOT_LB_REVNAT, vip, client},
		{"to no service: lb, ct; not lb-revnat (nothing to reverse: no rev_nat_index)", in,
			packet.TCP(other, plain, packet.SYN, nil), other.Port(), 2, abi.AbiHpSlotHP_SLOT_CT, other, plain},
		{"the reply of a flow to no service: lb, ct; not lb-revnat", out,
			packet.TCP(plain, other, packet.SYN|packet.ACK, nil), other.Port(), 2, abi.AbiHpSlotHP_SLOT_CT, plain, other},
	}
	for _, tc := range cases {
		r := h.run(t, tc.dir, tc.pkt)
		if r.Code != 0 {
			t.Fatalf("%s: verdict %d, want pass", tc.name, r.Code)
		}
		if !packet.Valid(r.Packet) {
			t.Fatalf("%s: checksums invalid after the pipeline", tc.name)
		}
		if src, dst := packet.Addrs(r.Packet); src != tc.src || dst != tc.dst {
			t.Fatalf("%s: left as %s → %s, want %s → %s", tc.name, src, dst, tc.src, tc.dst)
		}
		if tc.src == client && tc.dst == plain && !bytes.Equal(r.Packet, tc.pkt) {
			t.Fatalf("%s: packet changed", tc.name)
		}
		c := lastCtx(t, h, tc.dir, tc.port)
		if c.Hops != tc.hops || abi.Slot(c.Slot) != tc.last {
			t.Errorf("%s: %d tail calls, last slot %s; want %d, last %s", tc.name,
				c.Hops, abi.SlotName(abi.Slot(c.Slot)), tc.hops, abi.SlotName(tc.last))
		}
	}
}

// TestPrivilegedSplitStagesEnterEach: with split_stages (or a vendor's
// lb-select) a new flow enters lb, lb-select and lb-dnat in turn and is
// translated the same; an established one is still lb's alone.
func TestPrivilegedSplitStagesEnterEach(t *testing.T) {
	h := newLBWith(t, func(c *Config) { c.SplitStages = true })
	vip, be := ap("10.96.5.2:80"), ap("10.240.2.8:8080")
	h.add(t, services.ServiceAddArgs{VIP: vip.String() + "/tcp", Backends: backends(be.String())})
	client := ap("10.240.1.2:41003")
	for _, tc := range []struct {
		name string
		pkt  []byte
		hops uint8
	}{
		{"SYN", packet.TCP(client, vip, packet.SYN, nil), 4},
		{"established", packet.TCP(client, vip, packet.ACK, []byte("x")), 2},
	} {
		r := h.run(t, in, tc.pkt)
		if src, dst := packet.Addrs(r.Packet); r.Code != 0 || src != client || dst != be || !packet.Valid(r.Packet) {
			t.Fatalf("%s: verdict %d, left as %s → %s (valid %v), want %s → %s", tc.name, r.Code, src, dst, packet.Valid(r.Packet), client, be)
		}
		if c := lastCtx(t, h, in, client.Port()); c.Hops != tc.hops || abi.Slot(c.Slot) != abi.AbiHpSlotHP_SLOT_CT {
			t.Errorf("%s: %d tail calls, last slot %s; want %d, last ct", tc.name, c.Hops, abi.SlotName(abi.Slot(c.Slot)), tc.hops)
		}
	}
}
