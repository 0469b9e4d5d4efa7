package stamp_test

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/plugintest/packet"
	"github.com/hotpath/hotpath/internal/dptest"
	"github.com/hotpath/hotpath/internal/stamp"
	"github.com/hotpath/hotpath/supervisor/pipeline"
)

var (
	src = netip.MustParseAddrPort("10.240.1.2:40000")
	dst = netip.MustParseAddrPort("10.240.2.2:80")
)

// spin keeps every packet in stage A for a fraction of a millisecond, so
// packets are always in the middle of the pipeline when the writer acts.
// The entry program enters slots by direct jump, so every slot write also
// re-patches its call site (IPIs to every CPU, ~0.1–1 ms on a busy VM): a
// packet must linger longer than one slot write for an unsafe rewrite to
// catch it between A and B (with 4096 iterations, ~30 µs, none did).
const spin = 1 << 16

// TestPrivilegedAtomicityCheckCatchesMixedGenerations is the negative
// control of TestPrivilegedGenerationFlipsAreAtomic: the same check stage,
// under a continuous stream of packets, must report packets that ran stages
// of two generations as soon as the flip protocol is broken, and report
// none when it is followed. Generations alternate between two banks with
// two differently tagged sets each, so a rewritten bank holds stages whose
// tag differs from the old ones but maps to the same bank: only a packet
// that really mixed two sets is counted.
func TestPrivilegedAtomicityCheckCatchesMixedGenerations(t *testing.T) {
	h := dptest.New(t)
	sets := map[uint32]*stamp.Set{} // by generation % (2*Banks)
	for _, tag := range []uint32{1, 2, abi.Banks + 1, abi.Banks + 2} {
		s, err := stamp.LoadSlow(h.Maps.ByName, tag, spin)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		sets[tag] = s
	}
	set := func(gen uint32) *stamp.Set { return sets[gen%(2*abi.Banks)] }
	// next alternates banks 1 and 2: 1, 2, 17, 18, 33, ...
	next := func(gen uint32) uint32 {
		if gen%2 == 1 {
			return gen + 1
		}
		return gen + abi.Banks - 1
	}
	gen := uint32(1)
	if err := h.Pipe.Prepare(gen, set(gen).Slots()); err != nil {
		t.Fatal(err)
	}
	h.Pipe.Flip(gen)

	mismatches := func() uint64 {
		return h.Metric(t, abi.AbiHpReasonHP_R_GEN_MISMATCH, abi.AbiHpDirHP_DIR_INGRESS).Packets
	}
	flip := func(settle bool) {
		n := next(gen)
		if settle {
			if err := h.Pipe.Settle(); err != nil {
				t.Fatal(err)
			}
		}
		// Without the settle this rewrites the bank packets left one flip ago.
		if err := h.Pipe.Prepare(n, set(n).Slots()); err != nil {
			t.Fatal(err)
		}
		h.Pipe.Flip(n)
		gen = n
	}

	t.Run("grace period kept", func(t *testing.T) {
		_, stop := drive(t, h)
		before := mismatches()
		flips := 0
		// A grace period takes some milliseconds; without one, a mixed
		// packet shows up within tens of flips (see below).
		for start := time.Now(); flips < 200 && time.Since(start) < 10*time.Second; flips++ {
			flip(true)
		}
		n := stop()
		t.Logf("%d flips with a grace period each under %d packets", flips, n)
		if n < 1000 || flips < 50 {
			t.Fatalf("too little to prove anything: %d packets, %d flips", n, flips)
		}
		if got := mismatches() - before; got != 0 {
			t.Fatalf("%d packets ran two generations although every rewrite waited for a grace period", got)
		}
	})

	t.Run("grace period removed", func(t *testing.T) {
		sent, stop := drive(t, h)
		before := mismatches()
		flips := 0
		for start := time.Now(); mismatches() == before && time.Since(start) < 20*time.Second; flips++ {
			flip(false)
		}
		n := stop()
		got := mismatches() - before
		t.Logf("%d packets of %d ran two generations in %d flips without a grace period", got, n, flips)
		if got == 0 {
			t.Fatalf("no mixed packet reported in %d flips without a grace period (%d packets): the check cannot fail", flips, sent())
		}
	})

	t.Run("live bank rewritten slot by slot", func(t *testing.T) {
		if err := h.Pipe.Settle(); err != nil {
			t.Fatal(err)
		}
		sent, stop := drive(t, h)
		before := mismatches()
		calls := h.Maps.ByName[abi.MapCalls]
		live := gen
		rewrites := 0
		for start := time.Now(); mismatches() == before && time.Since(start) < 20*time.Second; rewrites++ {
			// Replace the live generation's stages one at a time with the
			// bank's other set, as a slot-by-slot upgrade would.
			s := set(live + uint32(rewrites+1)*abi.Banks)
			for slot, prog := range s.Slots() {
				if err := calls.Put(pipeline.Bank(live)*abi.Slots+uint32(slot), prog); err != nil {
					t.Fatal(err)
				}
			}
		}
		n := stop()
		got := mismatches() - before
		t.Logf("%d packets of %d ran two generations in %d slot-by-slot rewrites", got, n, rewrites)
		if got == 0 {
			t.Fatalf("no mixed packet reported in %d rewrites of the live bank (%d packets): the check cannot fail", rewrites, sent())
		}
	})
}

// drive sends packets through the ingress entry program from another
// goroutine until stop, which returns how many were sent.
func drive(t *testing.T, h *dptest.Harness) (sent func() uint64, stop func() uint64) {
	t.Helper()
	pkt := packet.UDP(src, dst, []byte("stamp"))
	var n atomic.Uint64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if _, err := h.Run(abi.AbiHpDirHP_DIR_INGRESS, pkt); err != nil {
				t.Error(err)
				return
			}
			n.Add(1)
		}
	}()
	stop = func() uint64 { cancel(); wg.Wait(); return n.Load() }
	t.Cleanup(func() { stop() })
	return n.Load, stop
}
