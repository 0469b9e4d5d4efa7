package entry_test

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/plugintest"
	"github.com/hotpath/hotpath/core/plugintest/packet"
)

// clockValue is struct hp_clock (bpf/lib/entry.h).
type clockValue struct {
	Jiffies uint64
	Now     uint32
	Pad     uint32
}

// TestPrivilegedEntryClockIsTheCoarseClock: the seconds the entry program
// gives a packet (hp_ctx.now, kept per CPU for a tick) are what userspace
// reads from CLOCK_MONOTONIC_COARSE (ctmap.Now) around the run, and they
// move on with it: a cache that stopped refreshing would stay behind.
func TestPrivilegedEntryClockIsTheCoarseClock(t *testing.T) {
	h := plugintest.New(t)
	clock := entryMap(t, h.Entry.Ingress, "hp_clock")
	// BPF_PROG_TEST_RUN runs on the calling thread's CPU: keep it on one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set unix.CPUSet
	set.Set(0)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		t.Fatalf("pin to CPU 0: %v", err)
	}
	pkt := packet.TCP(client, netip.MustParseAddrPort("10.240.2.2:80"), packet.ACK, nil)
	seen := map[uint32]bool{}
	for end := time.Now().Add(2500 * time.Millisecond); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		before := ctmap.Now()
		if _, err := h.Run(plugintest.Ingress, append([]byte(nil), pkt...)); err != nil {
			t.Fatal(err)
		}
		after := ctmap.Now()
		var per []clockValue
		if err := clock.Lookup(uint32(0), &per); err != nil {
			t.Fatalf("read hp_clock: %v", err)
		}
		got := per[0]
		if got.Now < before || got.Now > after || got.Jiffies == 0 {
			t.Fatalf("packet's clock %d s (jiffies %d), userspace read %d before and %d after", got.Now, got.Jiffies, before, after)
		}
		seen[got.Now] = true
	}
	if len(seen) < 2 {
		t.Errorf("over 2.5 s the packet's clock read %v: it did not move on", seen)
	}
}

// entryMap opens the map called name that prog uses.
func entryMap(t *testing.T, prog *ebpf.Program, name string) *ebpf.Map {
	t.Helper()
	info, err := prog.Info()
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := info.MapIDs()
	for _, id := range ids {
		m, err := ebpf.NewMapFromID(id)
		if err != nil {
			t.Fatal(err)
		}
		if mi, err := m.Info(); err == nil && mi.Name == name {
			t.Cleanup(func() { m.Close() })
			return m
		}
		m.Close()
	}
	t.Fatalf("program %v uses no map %s", prog, name)
	return nil
}
