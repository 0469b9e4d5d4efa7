package leastconn

import (
	"testing"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
)

// TestPrivilegedRefreshCountsActiveServiceFlows: the count of a backend is
// its live, non-closing CT_SERVICE entries in both CT maps; other entries
// do not count, backends that are gone lose their entry, and the bumps the
// datapath made since the last refresh are replaced by the truth.
func TestPrivilegedRefreshCountsActiveServiceFlows(t *testing.T) {
	s := newStage(t)
	s.service(t, 7, vendor, 11, 12, 13)
	s.seed(t, map[uint32]uint64{11: 50, 14: 7}) // 14 is no backend any more
	now := ctmap.Now()
	live, expired := now+100, now-1
	entries := []struct {
		m        string
		sport    uint16
		flags    uint8
		backend  uint32
		lifetime uint32
		ctFlags  uint32
	}{
		{abi.MapCT4, 1, abi.TupleService, 11, live, abi.CTSeenNonSyn},
		{abi.MapCT4, 2, abi.TupleService, 11, live, 0},
		{abi.MapCT4, 3, abi.TupleService, 11, live, abi.CTSeenNonSyn},
		{abi.MapCT4, 4, abi.TupleService, 12, live, abi.CTTxClosing},                   // closing
		{abi.MapCT4, 5, abi.TupleService, 13, expired, abi.CTSeenNonSyn},               // expired
		{abi.MapCT4, 6, abi.TupleOut, 13, live, abi.CTSeenNonSyn},                      // not a service entry
		{abi.MapCT4, 7, abi.TupleService, 12, live, abi.CTRxClosing | abi.CTTxClosing}, // closed
		{abi.MapCTAny4, 8, abi.TupleService, 12, live, 0},                              // UDP flow
	}
	for _, e := range entries {
		proto := uint8(6)
		if e.m == abi.MapCTAny4 {
			proto = 17
		}
		k := abi.CTTuple{Saddr: 0x0201f00a, Daddr: 0x0a00600a, Sport: e.sport, Dport: 0x5000, Nexthdr: proto, Flags: e.flags}
		v := abi.CTEntry{Packets: 1, Lifetime: e.lifetime, Flags: e.ctFlags, BackendId: e.backend}
		if err := s.Maps[e.m].Put(k, v); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Refresh(s.Layout, s.counts)
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint32]uint64{11: 3, 12: 1, 13: 0}
	if len(got) != len(want) {
		t.Fatalf("refresh returned %v, want %v", got, want)
	}
	for id, n := range want {
		if got[id] != n || s.count(t, id) != n {
			t.Errorf("backend %d: refresh says %d, map holds %d, want %d", id, got[id], s.count(t, id), n)
		}
	}
	var n uint64
	if err := s.counts.Lookup(uint32(14), &n); err == nil {
		t.Errorf("the count of removed backend 14 survived the refresh (%d)", n)
	}
}
