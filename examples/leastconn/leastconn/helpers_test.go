package leastconn

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/plugintest"
	"github.com/hotpath/hotpath/core/plugintest/packet"
)

// lb_svc_flag bits of bpf/lib/lb.h: what the lb stage leaves for lb-select.
const (
	sfSelect   = 0x01
	sfAffinity = 0x08
)

var (
	client = netip.MustParseAddrPort("10.240.1.2:40000")
	vip    = netip.MustParseAddrPort("10.96.0.10:80")
)

// stage is a private datapath with the leastconn stage loaded.
type stage struct {
	*plugintest.Harness
	prog   *ebpf.Program
	counts *ebpf.Map
}

func newStage(t *testing.T) *stage {
	t.Helper()
	h := plugintest.New(t)
	prog, err := LoadStage(h.Layout, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	counts, err := OpenCounts(h.Layout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { counts.Close() })
	return &stage{Harness: h, prog: prog, counts: counts}
}

// service writes svc's backends into lb4_slots and lb4_backends, as the lb
// plugin does, and returns the service record lb's stage would copy into
// scratch.
func (s *stage) service(t *testing.T, id uint32, alg abi.AbiHpLbAlgorithm, backends ...uint32) abi.LB4Service {
	t.Helper()
	for slot, b := range backends {
		if err := s.Maps[abi.AbiMapLb4Slots].Put(abi.LB4SlotKey{SvcId: id, Slot: uint32(slot)}, b); err != nil {
			t.Fatal(err)
		}
		if err := s.Maps[abi.AbiMapLb4Backends].Put(b, abi.LB4Backend{Address: b, Port: 80, Proto: 6, Weight: 1}); err != nil {
			t.Fatal(err)
		}
	}
	return abi.LB4Service{SvcId: id, Count: uint16(len(backends)), RevNatIndex: uint16(id), Algorithm: uint8(alg)}
}

// seed sets the active-connection counts.
func (s *stage) seed(t *testing.T, counts map[uint32]uint64) {
	t.Helper()
	for id, n := range counts {
		if err := s.counts.Put(id, n); err != nil {
			t.Fatal(err)
		}
	}
}

// count reads one backend's count (0 when absent).
func (s *stage) count(t *testing.T, id uint32) uint64 {
	t.Helper()
	var n uint64
	if err := s.counts.Lookup(id, &n); err != nil {
		return 0
	}
	return n
}

// selectCtx is the context lb leaves for a new flow of svc (lib/lb.h):
// LB_SF_SELECT and the service in scratch.
func selectCtx(t *testing.T, svc abi.LB4Service, lport uint16) (abi.Ctx, []byte) {
	t.Helper()
	pkt := packet.TCP(netip.AddrPortFrom(client.Addr(), lport), vip, packet.SYN, nil)
	c := plugintest.Context(plugintest.Ingress, pkt)
	c.SvcId = svc.SvcId
	c.RevNatIndex = svc.RevNatIndex
	c.SvcFlags = sfSelect
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.NativeEndian, svc); err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 32)
	copy(raw, buf.Bytes())
	for i := range c.Scratch {
		c.Scratch[i] = binary.NativeEndian.Uint64(raw[8*i:])
	}
	return c, pkt
}

// pick runs the stage for one new flow and returns the backend it chose.
func (s *stage) pick(t *testing.T, svc abi.LB4Service, lport uint16) uint32 {
	t.Helper()
	c, pkt := selectCtx(t, svc, lport)
	r, left, err := s.RunStage(s.prog, c, pkt)
	if err != nil {
		t.Fatal(err)
	}
	if r.Code != 0 {
		t.Fatalf("flow from port %d: verdict %d, want pass", lport, r.Code)
	}
	return left.BackendId
}
