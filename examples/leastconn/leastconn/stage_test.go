package leastconn

import (
	"testing"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/plugintest"
)

const (
	vendor = abi.AbiHpLbAlgorithmHP_LB_ALG_VENDOR
	random = abi.AbiHpLbAlgorithmHP_LB_ALG_RANDOM
	maglev = abi.AbiHpLbAlgorithmHP_LB_ALG_MAGLEV
)

// TestPrivilegedLeastConnPicksFewest: a vendor service's new flow goes to
// the backend with the fewest active connections, and each pick counts, so
// a burst levels the backends instead of piling onto one.
func TestPrivilegedLeastConnPicksFewest(t *testing.T) {
	s := newStage(t)
	svc := s.service(t, 7, vendor, 11, 12, 13)
	s.seed(t, map[uint32]uint64{11: 5, 12: 2, 13: 9})
	if got := s.pick(t, svc, 40000); got != 12 {
		t.Fatalf("first flow went to backend %d, want 12 (2 connections against 5 and 9)", got)
	}
	if n := s.count(t, 12); n != 3 {
		t.Fatalf("backend 12 counts %d after its pick, want 3", n)
	}
	seen := map[uint32]int{}
	for i := range 5 {
		seen[s.pick(t, svc, 40001+uint16(i))]++
	}
	c11, c12, c13 := s.count(t, 11), s.count(t, 12), s.count(t, 13)
	if c13 != 9 || seen[13] != 0 {
		t.Fatalf("the busiest backend got flows: picks %v, counts 11:%d 12:%d 13:%d", seen, c11, c12, c13)
	}
	if c11+c12 != 13 || c11-c12+1 > 2 {
		t.Fatalf("a burst did not level backends 11 and 12: picks %v, counts %d and %d", seen, c11, c12)
	}
}

// TestPrivilegedLeastConnSpreadsTies: backends with equal counts share new
// flows (the scan starts at a random slot).
func TestPrivilegedLeastConnSpreadsTies(t *testing.T) {
	s := newStage(t)
	svc := s.service(t, 8, vendor, 21, 22, 23)
	seen := map[uint32]int{}
	for i := range 30 {
		seen[s.pick(t, svc, 41000+uint16(i))]++
		// Undo the bump: every pick sees three equal counts.
		s.seed(t, map[uint32]uint64{21: 0, 22: 0, 23: 0})
	}
	if len(seen) < 2 {
		t.Fatalf("30 flows over three idle backends all went to %v", seen)
	}
}

// TestPrivilegedLeastConnHandsOtherServicesToLB: services of lb's own
// algorithms get lb's selection (Maglev table, random slots) and leave the
// counts alone.
func TestPrivilegedLeastConnHandsOtherServicesToLB(t *testing.T) {
	s := newStage(t)
	s.seed(t, map[uint32]uint64{31: 100, 32: 100, 33: 0})

	rnd := s.service(t, 9, random, 31, 32, 33)
	seen := map[uint32]int{}
	for i := range 30 {
		seen[s.pick(t, rnd, 42000+uint16(i))]++
	}
	if len(seen) < 2 || seen[0] != 0 {
		t.Fatalf("random service: picks %v, want spread over 31..33", seen)
	}

	mag := s.service(t, 10, maglev, 31, 32, 33)
	const m = 7
	// A table as lb writes one: in lb4_maglev's chunks, named by the
	// service value's offset and M.
	const off = 5
	var chunk abi.MaglevChunk
	for i := range chunk.Backend {
		chunk.Backend[i] = 32
	}
	if err := s.Maps[abi.AbiMapLb4Maglev].Put(uint32(off), chunk); err != nil {
		t.Fatal(err)
	}
	mag.MaglevSize, mag.MaglevOffset = m, off
	for i := range 20 {
		if got := s.pick(t, mag, 43000+uint16(i)); got != 32 {
			t.Fatalf("maglev service: flow went to %d, the table says 32", got)
		}
	}
	for id, want := range map[uint32]uint64{31: 100, 32: 100, 33: 0} {
		if n := s.count(t, id); n != want {
			t.Errorf("backend %d counts %d after lb's picks, want %d untouched", id, n, want)
		}
	}
}

// TestPrivilegedLeastConnFollowsTheContract: the stage acts only when lb
// asks for a selection, keeps a choice already made, and drops a flow of a
// service without backends with reason no_backend.
func TestPrivilegedLeastConnFollowsTheContract(t *testing.T) {
	s := newStage(t)
	svc := s.service(t, 11, vendor, 41, 42)

	c, pkt := selectCtx(t, svc, 44000)
	c.SvcFlags = 0 // not to a service, or an established flow
	if _, left, err := s.RunStage(s.prog, c, pkt); err != nil || left.BackendId != 0 {
		t.Fatalf("without LB_SF_SELECT: backend %d (%v), want none", left.BackendId, err)
	}
	c.SvcFlags = sfSelect
	c.BackendId = 42 // chosen before this slot
	if _, left, err := s.RunStage(s.prog, c, pkt); err != nil || left.BackendId != 42 {
		t.Fatalf("a choice already made became %d (%v)", left.BackendId, err)
	}
	if n := s.count(t, 41) + s.count(t, 42); n != 0 {
		t.Fatalf("flows the stage did not choose were counted (%d)", n)
	}

	empty := abi.LB4Service{SvcId: 12, Algorithm: uint8(vendor)}
	c, pkt = selectCtx(t, empty, 44001)
	r, _, err := s.RunStage(s.prog, c, pkt)
	if err != nil {
		t.Fatal(err)
	}
	if r.Code != 2 {
		t.Fatalf("service without backends: verdict %d, want drop (2)", r.Code)
	}
	if m := s.Metric(t, abi.AbiHpReasonHP_R_NO_BACKEND, plugintest.Ingress); m.Packets != 1 {
		t.Fatalf("no_backend counted %d packets, want 1", m.Packets)
	}
}
