package lb

import (
	"testing"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/plugintest/packet"
	"github.com/hotpath/hotpath/core/services"
)

// TestPrivilegedLBTupleReusedWithoutService: a client port that carried a
// flow through a VIP is reused, while that flow's CT entry still lives, for
// a connection straight to the same backend (a socket socket LB translated,
// or a client dialling the backend): its replies must come from the backend,
// not be reverse-translated into the old VIP. The entry's rev_nat_index
// belongs to the old flow.
func TestPrivilegedLBTupleReusedWithoutService(t *testing.T) {
	h := newLB(t)
	svc := h.add(t, services.ServiceAddArgs{VIP: vipTCP.String() + "/tcp", Backends: backends(be1.String())})
	if r := h.run(t, in, packet.TCP(client, vipTCP, packet.SYN, nil)); r.Code != 0 {
		t.Fatalf("SYN to the VIP: verdict %d", r.Code)
	}
	h.run(t, in, packet.TCP(client, vipTCP, packet.RST, nil))
	outKey := ctTuple(client, be1, packet.ProtoTCP, abi.TupleOut)
	if e, ok := h.Dump(t, abi.MapCT4)[outKey]; !ok || e.RevNatIndex != uint16(svc.ID) {
		t.Fatalf("entry of the VIP flow: %+v %v", e, ok)
	}

	if r := h.run(t, in, packet.TCP(client, be1, packet.SYN, nil)); r.Code != 0 {
		t.Fatalf("SYN to the backend: verdict %d", r.Code)
	}
	r := h.run(t, out, packet.TCP(be1, client, packet.SYN|packet.ACK, nil))
	if src, _ := packet.Addrs(r.Packet); r.Code != 0 || src != be1 {
		t.Fatalf("reply of the direct connection left from %s (verdict %d), want %s", src, r.Code, be1)
	}
	if e := h.Dump(t, abi.MapCT4)[outKey]; e.RevNatIndex != 0 || e.BackendId != 0 {
		t.Errorf("entry reused by the direct connection keeps rev_nat %d backend %d", e.RevNatIndex, e.BackendId)
	}
}
