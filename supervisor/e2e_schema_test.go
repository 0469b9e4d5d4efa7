package supervisor_test

import (
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/supervisor"
)

// ctLayout is the layout of the pinned ct4 and ct_any4, which must agree.
func ctLayout(t *testing.T, env *e2e.Env) uint32 {
	t.Helper()
	var got []uint32
	for _, name := range ctmap.Maps {
		m, err := ebpfPinned(env, name)
		if err != nil {
			t.Fatal(err)
		}
		v, err := ctmap.Layout(m)
		m.Close()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if got[0] != got[1] {
		t.Fatalf("ct4 has layout %d, ct_any4 %d", got[0], got[1])
	}
	return got[0]
}

// replyCounters sums the reply counters (layout 2) of the streams' CT
// entries.
func replyCounters(t *testing.T, env *e2e.Env, streams []*lab.Stream, srv string) uint64 {
	t.Helper()
	m := pinnedCT(t, env)
	defer m.Close()
	dst := netip.MustParseAddrPort(srv)
	var sum uint64
	for _, s := range streams {
		src := netip.MustParseAddrPort(s.LocalAddr())
		k := abi.CTTuple{Saddr: u32(src.Addr()), Daddr: u32(dst.Addr()), Sport: htons(src.Port()), Dport: htons(dst.Port()), Nexthdr: 6, Flags: abi.TupleOut}
		e, err := ctmap.Lookup(m, &k)
		if err != nil {
			t.Fatalf("stream %s: %v", s.LocalAddr(), err)
		}
		sum += e.RxPackets
	}
	return sum
}

// The acceptance for schema migration: 200 000 CT entries and 50
// live TCP streams, ct upgraded from a build writing layout 1 to one
// writing layout 2 and back: the maps are migrated each time, every entry
// kept with counters that never go back, layout 2's datapath fills its new
// fields, and no stream breaks.
func TestPrivilegedUpgradeCTLayoutUnderLoad(t *testing.T) {
	const entries, streams = 200_000, 50
	env, ss, srv := resizeEnv(t, 256<<10, streams, nil, "ct", "lb")
	fillCT(t, env, entries)
	// One more entry whose report times say when it last saw a packet:
	// the ct build's own conversion starts layout 2's last_seen there.
	marked := synthKey(entries)
	func() {
		m := pinnedCT(t, env)
		defer m.Close()
		e := abi.CTEntry{Packets: 1, Lifetime: ctmap.Now() + 86400, LastTxReport: 12345, LastRxReport: 100, Created: 7}
		if err := m.Put(&marked, &e); err != nil {
			t.Fatal(err)
		}
	}()
	before := readCT(t, env)
	pkts := streamEntries(t, env, ss, srv, before)
	if l := ctLayout(t, env); l != 1 {
		t.Fatalf("fresh maps have layout %d, want 1", l)
	}
	steps := []struct {
		binary string
		layout uint32
	}{
		{e2e.CTLayout(t, "2.0.0-layout2", 2), 2},
		{e2e.CTLayout(t, "1.0.0-layout1", 1), 1},
	}
	for _, step := range steps {
		old := ct4Status(t, env)
		res, err := upgrade(env, "ct", step.binary, time.Second)
		if err != nil {
			t.Fatalf("upgrade to layout %d: %v", step.layout, err)
		}
		if len(res.Migrations) != 2 || res.Migrations[0].To != step.layout {
			t.Fatalf("upgrade to layout %d migrated %+v, want ct4 and ct_any4", step.layout, res.Migrations)
		}
		if l := ctLayout(t, env); l != step.layout {
			t.Fatalf("after the upgrade to layout %d the maps have layout %d", step.layout, l)
		}
		if now := ct4Status(t, env); now.ID == old.ID || now.MaxEntries != old.MaxEntries || now.Layout != step.layout {
			t.Fatalf("ct4 after the migration: %+v (was %+v): want a new map of the same size", now, old)
		}
		p := env.PluginStatus("ct")
		if p.Pid != res.NewPid || !p.Healthy || !p.GCLease {
			t.Fatalf("ct after the upgrade to layout %d: %+v", step.layout, p)
		}
		t.Logf("upgrade to layout %d (%s): %+v in %s", step.layout, res.To, res.Migrations, res.Duration.Round(time.Millisecond))
		after := readCT(t, env)
		checkKept(t, fmt.Sprintf("after the upgrade to layout %d", step.layout), entries, before, after)
		before = after
		if step.layout == 2 {
			if !strings.Contains(res.Migrations[0].What, "plugin ct") {
				t.Errorf("migration %+v: want the ct build converting", res.Migrations[0])
			}
			m := pinnedCT(t, env)
			e, err := ctmap.Lookup(m, &marked)
			m.Close()
			if err != nil || e.LastSeen != 12345 {
				t.Errorf("marked entry after the migration: %+v, %v; want last_seen 12345 from the ct build's conversion", e, err)
			}
			// The replies of the streams are counted in layout 2's fields.
			waitFor(t, "reply counters in layout 2", 5*time.Second, func() bool {
				return replyCounters(t, env, ss, srv) > 0
			})
		}
	}
	time.Sleep(300 * time.Millisecond)
	now := streamEntries(t, env, ss, srv, readCT(t, env))
	for i := range pkts {
		if now[i] <= pkts[i] {
			t.Errorf("stream %d: CT packets %d -> %d, want growth", i, pkts[i], now[i])
		}
	}
	broken := 0
	for i, s := range ss {
		if st := s.Stop(); st.Err != nil {
			broken++
			t.Errorf("stream %d broke: %v", i, st.Err)
		} else if st.MaxGap > 2*time.Second {
			t.Errorf("stream %d stalled %s", i, st.MaxGap)
		}
	}
	for reason, n := range drops(t, env) {
		if n != 0 {
			t.Errorf("%d packets dropped as %s", n, reason)
		}
	}
	t.Logf("%d streams, %d broken", len(ss), broken)
}

// An upgrade to a layout-2 build that fails its health gate is rolled back
// with its migration reverted: the maps are back in layout 1 with every
// entry, the old instance serves. A layout-2 build whose maps no migration
// reaches (another key) or of a layout nobody knows is refused before
// anything changes.
func TestPrivilegedUpgradeCTLayoutRollbackAndRefusal(t *testing.T) {
	const entries = 20_000
	env, ss, srv := resizeEnv(t, 64<<10, 2, nil, "ct", "lb")
	fillCT(t, env, entries)
	before := readCT(t, env)
	pkts := streamEntries(t, env, ss, srv, before)
	was := env.PluginStatus("ct")

	bad := e2e.FaultyLayout(t, "unhealthy=300ms", "2.0.0-unhealthy", 2)
	t.Cleanup(func() { killAll(faultyBinary(bad)) })
	res, err := upgrade(env, "ct", bad, 1500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("upgrade to an unhealthy layout-2 build: %v, want a rollback", err)
	}
	if !res.RolledBack || len(res.Migrations) != 2 {
		t.Fatalf("rolled back upgrade: %+v, want the two migrations reported", res)
	}
	t.Logf("rolled back: %v", err)
	if l := ctLayout(t, env); l != 1 {
		t.Fatalf("after the rollback the maps have layout %d, want 1", l)
	}
	after := readCT(t, env)
	checkKept(t, "after the rollback", entries, before, after)
	p := env.PluginStatus("ct")
	if p.Pid != was.Pid || p.Version != was.Version || !p.GCLease || !p.Healthy {
		t.Fatalf("ct after the rollback: %+v, want the old instance %+v with its lease", p, was)
	}
	if res.NewPid > 0 && running(res.NewPid) {
		t.Errorf("new instance %d left running", res.NewPid)
	}

	refusals := []struct{ fault, want string }{
		{"layoutkey", "key size"},
		{"layout9", "layout 9"},
	}
	for _, c := range refusals {
		old, gen := ct4Status(t, env), env.Status().ActiveGeneration
		binary := e2e.FaultyLayout(t, c.fault, "2.0.0-"+c.fault, 2)
		_, err := upgrade(env, "ct", binary, time.Second)
		if err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("upgrade to a build with fault %s: %v, want a refusal naming %q", c.fault, err, c.want)
		}
		t.Logf("%s: %v", c.fault, err)
		if now := ct4Status(t, env); now != old {
			t.Errorf("%s: ct4 changed: %+v, was %+v", c.fault, now, old)
		}
		if g := env.Status().ActiveGeneration; g != gen {
			t.Errorf("%s: generation %d, was %d", c.fault, g, gen)
		}
		if st, _ := supervisor.LoadState(env.StateDir); st.Remap != nil || st.Upgrade != nil {
			t.Errorf("%s: state left: remap %+v, upgrade %+v", c.fault, st.Remap, st.Upgrade)
		}
	}
	time.Sleep(300 * time.Millisecond)
	now := streamEntries(t, env, ss, srv, readCT(t, env))
	for i := range pkts {
		if now[i] <= pkts[i] {
			t.Errorf("stream %d not tracked: CT packets %d -> %d", i, pkts[i], now[i])
		}
	}
	for i, s := range ss {
		if st := s.Stop(); st.Err != nil {
			t.Errorf("stream %d broke: %v", i, st.Err)
		}
	}
}

func ebpfPinned(env *e2e.Env, name string) (*ebpf.Map, error) {
	return ebpf.LoadPinnedMap(pin.Layout{Root: env.Lab.BPFFS}.Map(name), nil)
}

// A supervisor killed in the health window of an upgrade that migrated the
// maps finishes the upgrade on restart: generation N ran against the old
// maps, which are gone, so a rollback there would need a migration back.
// The new build serves with the maps in its layout, every entry kept, and
// the next upgrade migrates them back.
func TestPrivilegedUpgradeCTLayoutSupervisorKilled(t *testing.T) {
	const entries = 20_000
	env, ss, srv := resizeEnv(t, 64<<10, 1, nil, "ct", "lb")
	fillCT(t, env, entries)
	before := readCT(t, env)
	v2 := e2e.CTLayout(t, "2.0.0-layout2", 2)
	done := make(chan error, 1)
	go func() {
		_, err := upgrade(env, "ct", v2, 10*time.Second)
		done <- err
	}()
	waitFor(t, "the migration to flip", 20*time.Second, func() bool {
		st, _ := supervisor.LoadState(env.StateDir)
		return st != nil && st.Upgrade != nil && st.Upgrade.Phase == "flipped"
	})
	st, _ := supervisor.LoadState(env.StateDir)
	newPid := st.Upgrade.New.Pid
	env.Sup.Kill(syscall.SIGKILL)
	env.Sup.Wait(5 * time.Second)
	<-done

	env.StartSupervisor(pluginFlags(env, "ct", "lb")...)
	p := env.PluginStatus("ct")
	if p.Version != "2.0.0-layout2" || p.Pid != newPid || !p.GCLease || !p.Healthy {
		t.Fatalf("ct after the restart: %+v, want the new instance %d with the lease", p, newPid)
	}
	if l := ctLayout(t, env); l != 2 {
		t.Fatalf("maps in layout %d after the restart, want 2", l)
	}
	if st, _ := supervisor.LoadState(env.StateDir); st.Upgrade != nil || st.Remap != nil {
		t.Errorf("state left: upgrade %+v, remap %+v", st.Upgrade, st.Remap)
	}
	after := readCT(t, env)
	checkKept(t, "after the restart", entries, before, after)
	pkts := streamEntries(t, env, ss, srv, after)
	time.Sleep(300 * time.Millisecond)
	if now := streamEntries(t, env, ss, srv, readCT(t, env)); now[0] <= pkts[0] {
		t.Errorf("stream not tracked after the restart: %d -> %d", pkts[0], now[0])
	}
	if _, err := upgrade(env, "ct", e2e.CTLayout(t, "1.0.0-layout1", 1), 500*time.Millisecond); err != nil {
		t.Fatalf("upgrade back to layout 1 after the recovery: %v", err)
	}
	if l := ctLayout(t, env); l != 1 {
		t.Fatalf("maps in layout %d after the upgrade back, want 1", l)
	}
	checkKept(t, "after the upgrade back", entries, before, readCT(t, env))
	if st := ss[0].Stop(); st.Err != nil {
		t.Errorf("stream broke: %v", st.Err)
	}
}

// A node started with a ct build of layout 2 gets maps of layout 2: the
// maps this start created are empty and unused, so they take the layout
// their owner declares, and the datapath fills layout 2's fields.
func TestPrivilegedStartCTLayout2(t *testing.T) {
	v2 := e2e.CTLayout(t, "2.0.0-layout2", 2)
	env, ss, srv := resizeEnv(t, 64<<10, 2, nil, "ct="+v2, "lb")
	if l := ctLayout(t, env); l != 2 {
		t.Fatalf("maps of a node started with ct layout 2 have layout %d", l)
	}
	if m := ct4Status(t, env); m.Layout != 2 || m.MaxEntries != 64<<10 {
		t.Fatalf("ct4 status %+v, want layout 2 and the configured size", m)
	}
	waitFor(t, "reply counters in layout 2", 5*time.Second, func() bool {
		return replyCounters(t, env, ss, srv) > 0
	})
	for i, s := range ss {
		if st := s.Stop(); st.Err != nil {
			t.Errorf("stream %d broke: %v", i, st.Err)
		}
	}
}
