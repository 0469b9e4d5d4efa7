package ct

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/plugintest"
	"github.com/hotpath/hotpath/core/plugintest/packet"
)

// sweepFill is how many expired entries the sweep has to get through: enough
// for a pass of some milliseconds.
const sweepFill = 200_000

// TestPrivilegedSweepKeepsEntryRefreshedDuringPass is the in-kernel
// counterpart of TestPrivilegedGCRechecksBeforeDelete: an entry that was
// expired when the sweep started, and that the datapath refreshes after the
// sweep started but before the sweep reaches it, must survive the pass.
//
// bpf_for_each_map_elem walks a hash map in the same order as the syscall
// iterator, so the test reads that order first and uses two other expired
// entries as witnesses of where the running pass is: "early" far before the
// target, "late" just before it. The target is refreshed, by a real packet
// through the ct stage, once "early" is gone (the pass is running) and the
// attempt counts only if "late" still exists afterwards (the pass had not
// reached the target when the packet refreshed it).
func TestPrivilegedSweepKeepsEntryRefreshedDuringPass(t *testing.T) {
	h := plugintest.New(t)
	prog, _, err := LoadStage(h.Layout, 1, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	h.Install(t, map[abi.Slot]*ebpf.Program{abi.AbiHpSlotHP_SLOT_CT: prog})
	m := h.Maps[abi.MapCT4]

	// Established flows, so a packet of theirs refreshes their entry.
	dst := netip.MustParseAddrPort("10.240.2.2:80")
	flows := map[abi.CTTuple][]byte{}
	for i := uint16(0); i < 16; i++ {
		src := netip.AddrPortFrom(netip.MustParseAddr("10.240.1.2"), 40000+i)
		before := h.Dump(t, abi.MapCT4)
		pkt := packet.TCP(src, dst, packet.ACK, []byte("x"))
		if _, err := h.Run(abi.AbiHpDirHP_DIR_INGRESS, pkt); err != nil {
			t.Fatal(err)
		}
		for k := range h.Dump(t, abi.MapCT4) {
			if _, ok := before[k]; !ok {
				flows[k] = pkt
			}
		}
	}
	if len(flows) != 16 {
		t.Fatalf("16 flows made %d CT entries", len(flows))
	}

	s, err := NewSweeper(m)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for attempt := 1; attempt <= 5; attempt++ {
		done, err := sweepRace(t, h, m, s, flows)
		if err != nil {
			t.Fatal(err)
		}
		if done {
			return
		}
		t.Logf("attempt %d inconclusive (the pass outran the refresh), again", attempt)
	}
	t.Fatal("the refresh never landed inside a running pass in 5 attempts")
}

// sweepRace runs one attempt. It reports false when the timing did not
// produce the case under test.
func sweepRace(t *testing.T, h *plugintest.Harness, m *ebpf.Map, s *Sweeper, flows map[abi.CTTuple][]byte) (bool, error) {
	now := ctmap.Now()
	stale := now - 5
	keys := make([]abi.CTTuple, sweepFill)
	vals := make([]abi.CTEntry, sweepFill)
	fill := map[abi.CTTuple]bool{}
	for i := range keys {
		keys[i] = abi.CTTuple{Saddr: uint32(i + 1), Daddr: 0x01020304, Sport: 1, Dport: 2, Nexthdr: 6}
		vals[i] = abi.CTEntry{Packets: 1, Lifetime: stale}
		fill[keys[i]] = true
	}
	if _, err := m.BatchUpdate(keys, vals, nil); err != nil {
		t.Fatalf("fill ct4: %v", err)
	}
	// The walk order, and the flow the walk reaches last.
	var order []abi.CTTuple
	var k abi.CTTuple
	var v abi.CTEntry
	it := m.Iterate()
	for it.Next(&k, &v) {
		order = append(order, k)
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	target := -1
	for i, k := range order {
		if _, ok := flows[k]; ok {
			target = i
		}
	}
	if target < len(order)/2 {
		t.Fatalf("every flow sits in the first half of the walk (last at %d of %d)", target, len(order))
	}
	pick := func(at int) abi.CTTuple {
		for ; !fill[order[at]]; at-- {
		}
		return order[at]
	}
	early, late, tk := pick(target/10), pick(target-target/50), order[target]
	// Expire the target; everything else in it stays as the datapath wrote it.
	if err := m.Lookup(&tk, &v); err != nil {
		t.Fatal(err)
	}
	v.Lifetime = stale
	if err := m.Update(&tk, &v, ebpf.UpdateExist); err != nil {
		t.Fatal(err)
	}

	type result struct {
		res PassResult
		err error
	}
	swept := make(chan result, 1)
	go func() {
		r, err := s.Pass(now)
		swept <- result{r, err}
	}()
	for {
		err := m.Lookup(&early, &v)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-swept: // finished before we saw it start
			return false, r.err
		default:
		}
	}
	if _, err := h.Run(abi.AbiHpDirHP_DIR_INGRESS, flows[tk]); err != nil {
		t.Fatal(err)
	}
	lateErr := m.Lookup(&late, &v)
	var r result
	select {
	case r = <-swept:
	case <-time.After(time.Minute):
		t.Fatal("sweep did not finish in a minute")
	}
	if r.err != nil {
		return false, r.err
	}
	if errors.Is(lateErr, ebpf.ErrKeyNotExist) {
		return false, nil
	}
	if lateErr != nil {
		t.Fatal(lateErr)
	}
	t.Logf("sweep %+v; target at %d of %d refreshed while the pass was between %d and %d",
		r.res, target, len(order), target/10, target-target/50)
	if err := m.Lookup(&tk, &v); err != nil {
		t.Fatalf("entry refreshed during the pass was deleted by it: %v", err)
	}
	// Present after the pass means kept: the packet ran before the pass
	// reached the entry, so nothing could have re-created it afterwards.
	if v.Lifetime < now {
		t.Fatalf("entry after the pass expires at %d (now %d): not refreshed", v.Lifetime, now)
	}
	if r.res.Deleted < sweepFill {
		t.Fatalf("sweep deleted %d of %d expired entries", r.res.Deleted, sweepFill)
	}
	return true, nil
}
