package supervisor_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
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

// resizeEnv is a lab whose ct4 has size entries, a supervisor running
// plugins (ct=... flags), and n TCP streams from pod a to an echo server
// in pod b.
func resizeEnv(t *testing.T, size uint32, n int, cfg func(*supervisor.Config), plugins ...string) (*e2e.Env, []*lab.Stream, string) {
	env := e2e.New(t, "a", "b")
	c := supervisor.Config{MapSizes: map[string]uint32{abi.MapCT4: size}}
	if cfg != nil {
		cfg(&c)
	}
	env.WriteConfig(c)
	env.StartSupervisor(pluginFlags(env, plugins...)...)
	b := env.Lab.Pods["b"]
	srv := b.IP.String() + ":8080"
	if _, err := lab.EchoServer(b.NS, srv); err != nil {
		t.Fatal(err)
	}
	var streams []*lab.Stream
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s, err := lab.StartStream(ctx, env.Lab.Pods["a"].NS, srv, 256, 20*time.Millisecond)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Stop() })
		streams = append(streams, s)
	}
	waitFor(t, "stream traffic", 10*time.Second, func() bool {
		for _, s := range streams {
			if s.Stats().Rounds < 10 {
				return false
			}
		}
		return true
	})
	return env, streams, srv
}

// synthKey is the i-th synthetic CT entry's key, in 198.18.0.0/15
// (benchmarking addresses no lab pod uses).
func synthKey(i int) abi.CTTuple {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], 0xc6120000+uint32(i/50000))
	return abi.CTTuple{Saddr: binary.NativeEndian.Uint32(a[:]), Daddr: 0x01ff000a, Sport: uint16(i % 50000), Dport: 0x5000, Nexthdr: 6, Flags: abi.TupleOut}
}

// fillCT writes n synthetic entries into the pinned ct4 with batch
// updates, alive for a day, with counters that differ per entry.
func fillCT(t *testing.T, env *e2e.Env, n int) {
	t.Helper()
	m := pinnedCT(t, env)
	defer m.Close()
	keys, vals := make([]abi.CTTuple, n), make([]abi.CTEntry, n)
	life := ctmap.Now() + 86400
	for i := range keys {
		keys[i] = synthKey(i)
		vals[i] = abi.CTEntry{Packets: uint64(i%1000 + 1), Bytes: uint64(i%1000+1) * 100, Lifetime: life, Flags: abi.CTSeenNonSyn}
	}
	for lo := 0; lo < n; lo += 1 << 14 {
		hi := min(lo+1<<14, n)
		if _, err := m.BatchUpdate(keys[lo:hi], vals[lo:hi], nil); err != nil {
			t.Fatal(err)
		}
	}
}

func pinnedCT(t *testing.T, env *e2e.Env) *ebpf.Map {
	t.Helper()
	m, err := ebpf.LoadPinnedMap(pin.Layout{Root: env.Lab.BPFFS}.Map(abi.MapCT4), nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readCT reads every entry of the pinned ct4.
func readCT(t *testing.T, env *e2e.Env) map[abi.CTTuple]abi.CTEntry {
	t.Helper()
	m := pinnedCT(t, env)
	defer m.Close()
	out := map[abi.CTTuple]abi.CTEntry{}
	if err := ctmap.Scan(m, func(k *abi.CTTuple, v *abi.CTEntry) bool {
		out[*k] = *v
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkKept fails unless every synthetic entry of before is in after with
// counters at least as high.
func checkKept(t *testing.T, when string, n int, before, after map[abi.CTTuple]abi.CTEntry) {
	t.Helper()
	lost, back := 0, 0
	for i := 0; i < n; i++ {
		k := synthKey(i)
		b, a := before[k], after[k]
		if _, ok := after[k]; !ok {
			lost++
			continue
		}
		if a.Packets < b.Packets || a.Bytes < b.Bytes {
			back++
		}
	}
	if lost > 0 || back > 0 {
		t.Errorf("%s: %d of %d synthetic entries lost, %d with counters gone back", when, lost, n, back)
	}
}

// streamEntries are the packet counters of the streams' CT entries.
func streamEntries(t *testing.T, env *e2e.Env, streams []*lab.Stream, srv string, ct map[abi.CTTuple]abi.CTEntry) []uint64 {
	t.Helper()
	dst := netip.MustParseAddrPort(srv)
	out := make([]uint64, len(streams))
	for i, s := range streams {
		src := netip.MustParseAddrPort(s.LocalAddr())
		k := abi.CTTuple{Saddr: u32(src.Addr()), Daddr: u32(dst.Addr()), Sport: htons(src.Port()), Dport: htons(dst.Port()), Nexthdr: 6, Flags: abi.TupleOut}
		e, ok := ct[k]
		if !ok {
			t.Fatalf("no CT entry for stream %s -> %s", s.LocalAddr(), srv)
		}
		out[i] = e.Packets
	}
	return out
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.NativeEndian.Uint32(b[:])
}

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// resize runs `hotpath map resize` and decodes its JSON answer.
func resize(env *e2e.Env, name string, size uint32, extra ...string) (*supervisor.ResizeResult, error) {
	args := append([]string{"map", "resize", name, "--max-entries", fmt.Sprint(size), "-o", "json"}, extra...)
	out, err := env.CLI(args...)
	var res supervisor.ResizeResult
	if len(out) > 0 {
		if jerr := json.Unmarshal(out, &res); jerr != nil && err == nil {
			return nil, fmt.Errorf("decode %s: %w", out, jerr)
		}
	}
	return &res, err
}

func ct4Status(t *testing.T, env *e2e.Env) supervisor.MapStatus {
	t.Helper()
	for _, m := range env.Status().Maps {
		if m.Name == abi.MapCT4 {
			return m
		}
	}
	t.Fatal("ct4 not in status")
	return supervisor.MapStatus{}
}

// The acceptance: 200 000 CT entries and 50 live TCP streams, ct4
// resized 256Ki -> 1Mi -> 256Ki while they run: every entry kept with
// counters that never go back, the streams' counters keep growing, no
// stream breaks; shrinking below the entries is refused; a dry run
// changes nothing.
func TestPrivilegedMapResizeUnderLoad(t *testing.T) {
	const entries, streams = 200_000, 50
	env, ss, srv := resizeEnv(t, 256<<10, streams, nil, "ct", "lb")
	fillCT(t, env, entries)
	before := readCT(t, env)
	pkts := streamEntries(t, env, ss, srv, before)

	dry, err := resize(env, abi.MapCT4, 1<<20, "--dry-run")
	if err != nil || !dry.DryRun || dry.Entries < entries || dry.Estimate <= 0 || dry.MemoryAfter <= dry.MemoryBefore {
		t.Fatalf("dry run: %+v, %v", dry, err)
	}
	if m := ct4Status(t, env); m.MaxEntries != 256<<10 {
		t.Fatalf("a dry run resized ct4 to %d", m.MaxEntries)
	}
	for _, size := range []uint32{1 << 20, 256 << 10} {
		old := ct4Status(t, env)
		res, err := resize(env, abi.MapCT4, size)
		if err != nil {
			t.Fatalf("resize to %d: %v", size, err)
		}
		now := ct4Status(t, env)
		if now.MaxEntries != size || now.ID == old.ID {
			t.Fatalf("after resize to %d: ct4 %+v (was %+v)", size, now, old)
		}
		r := res.Remap.Maps[0]
		t.Logf("ct4 %d -> %d: %d entries copied in %s, delta %d (%s), merged %d (%s), total %s, plugins paused %s, reloaded %v",
			r.From, r.To, r.Entries, r.Copy, r.Delta, r.DeltaTook, r.Merged, r.MergeTook, res.Remap.Took, res.Remap.Pause, res.Plugins)
		after := readCT(t, env)
		checkKept(t, fmt.Sprintf("after resize to %d", size), entries, before, after)
		before = after
	}
	time.Sleep(300 * time.Millisecond)
	now := streamEntries(t, env, ss, srv, readCT(t, env))
	for i := range pkts {
		if now[i] <= pkts[i] {
			t.Errorf("stream %d: CT packets %d -> %d, want growth", i, pkts[i], now[i])
		}
	}

	old := ct4Status(t, env)
	if _, err := resize(env, abi.MapCT4, 128<<10); err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "holds") {
		t.Errorf("shrink below the entries: %v, want a refusal naming the entries", err)
	}
	if m := ct4Status(t, env); m != old {
		t.Errorf("a refused shrink changed ct4: %+v, was %+v", m, old)
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
	t.Logf("%d streams, %d broken", len(ss), broken)
}

// pluginFlags are --plugin values: a NAME is the built plugin, a
// NAME=PATH stays as it is.
func pluginFlags(env *e2e.Env, names ...string) []string {
	var out []string
	for _, n := range names {
		if !strings.Contains(n, "=") {
			n = env.PluginFlag(n)
		}
		out = append(out, n)
	}
	return out
}

// A verifier rejection of the programs reloaded against the new map leaves
// the old map serving: same map, same generation, the remap undone, and
// says what failed.
func TestPrivilegedMapResizeFailureKeepsOldMap(t *testing.T) {
	bad := e2e.Faulty(t, "reverifier", "1.0.0-reverifier")
	t.Cleanup(func() { killAll(faultyBinary(bad)) })
	env, ss, srv := resizeEnv(t, 64<<10, 1, nil, "ct="+bad)
	fillCT(t, env, 1000)
	old, gen := ct4Status(t, env), env.Status().ActiveGeneration
	pkts := streamEntries(t, env, ss, srv, readCT(t, env))
	_, err := resize(env, abi.MapCT4, 128<<10)
	if err == nil || !strings.Contains(err.Error(), "load programs") || !strings.Contains(err.Error(), "old maps still serve") {
		t.Fatalf("resize with a plugin the verifier refuses: %v, want the failed step named", err)
	}
	if m := ct4Status(t, env); m != old {
		t.Errorf("ct4 after a failed resize: %+v, was %+v", m, old)
	}
	if g := env.Status().ActiveGeneration; g != gen {
		t.Errorf("generation %d after a failed resize, was %d", g, gen)
	}
	if st, _ := supervisor.LoadState(env.StateDir); st.Remap != nil || st.MapSizes != nil {
		t.Errorf("state after a failed resize: remap %+v, sizes %+v", st.Remap, st.MapSizes)
	}
	if left, _ := os.ReadDir(pin.Layout{Root: env.Lab.BPFFS}.RemapDir()); len(left) != 0 {
		t.Errorf("pins left under remap/: %v", left)
	}
	waitFor(t, "the ct plugin back with its lease", 5*time.Second, func() bool {
		p := env.PluginStatus("ct")
		return p.GCLease && p.Healthy
	})
	time.Sleep(200 * time.Millisecond)
	if now := streamEntries(t, env, ss, srv, readCT(t, env)); now[0] <= pkts[0] {
		t.Errorf("stream not tracked after the failed resize: %d -> %d", pkts[0], now[0])
	}
	if st := ss[0].Stop(); st.Err != nil {
		t.Errorf("stream broke: %v", st.Err)
	}
}

// kill -9 of the supervisor in the middle of a resize: before the flip the
// restart undoes it, after the flip it finishes it; either way every entry
// is there with its counters, the stream lives, nothing is left over.
func TestPrivilegedMapResizeSupervisorKilled(t *testing.T) {
	for _, c := range []struct {
		phase string
		want  uint32 // ct4 size after the restart
	}{{"swapped", 64 << 10}, {"flipped", 128 << 10}} {
		t.Run(c.phase, func(t *testing.T) {
			const entries = 20_000
			t.Setenv("HOTPATH_REMAP_PAUSE", c.phase)
			env, ss, srv := resizeEnv(t, 64<<10, 1, nil, "ct")
			os.Unsetenv("HOTPATH_REMAP_PAUSE") // for the next supervisor
			fillCT(t, env, entries)
			before := readCT(t, env)
			pkts := streamEntries(t, env, ss, srv, before)
			done := make(chan error, 1)
			go func() {
				_, err := resize(env, abi.MapCT4, 128<<10)
				done <- err
			}()
			waitFor(t, "the resize to reach "+c.phase, 20*time.Second, func() bool {
				st, _ := supervisor.LoadState(env.StateDir)
				return st != nil && st.Remap != nil && st.Remap.Phase == c.phase
			})
			time.Sleep(200 * time.Millisecond) // the step recorded takes effect
			env.Sup.Kill(syscall.SIGKILL)
			env.Sup.Wait(5 * time.Second)
			<-done
			time.Sleep(300 * time.Millisecond) // traffic with nobody home

			env.StartSupervisor(env.PluginFlag("ct"))
			if m := ct4Status(t, env); m.MaxEntries != c.want {
				t.Errorf("ct4 has %d entries after the restart, want %d", m.MaxEntries, c.want)
			}
			st, _ := supervisor.LoadState(env.StateDir)
			if st.Remap != nil {
				t.Errorf("remap still recorded: %+v", st.Remap)
			}
			if left, _ := os.ReadDir(pin.Layout{Root: env.Lab.BPFFS}.RemapDir()); len(left) != 0 {
				t.Errorf("pins left under remap/: %v", left)
			}
			gen := fmt.Sprint(env.PluginStatus("ct").Generation)
			dirs, _ := os.ReadDir(filepath.Join(env.Lab.BPFFS, "plugins", "ct"))
			for _, d := range dirs {
				if d.Name() != gen && d.Name() != "maps" {
					t.Errorf("program pins of generation %s left under plugins/ct (live: %s)", d.Name(), gen)
				}
			}
			after := readCT(t, env)
			checkKept(t, "after the restart", entries, before, after)
			time.Sleep(200 * time.Millisecond)
			if now := streamEntries(t, env, ss, srv, readCT(t, env)); now[0] <= pkts[0] {
				t.Errorf("stream not tracked after the restart: %d -> %d", pkts[0], now[0])
			}
			if p := env.PluginStatus("ct"); !p.GCLease || !p.Healthy {
				t.Errorf("ct plugin after the restart: %+v", p)
			}
			if s := ss[0].Stop(); s.Err != nil {
				t.Errorf("stream broke: %v", s.Err)
			}
			// The node is consistent: the next resize works, and the size
			// holds over a clean restart.
			if _, err := resize(env, abi.MapCT4, 256<<10); err != nil {
				t.Fatalf("resize after recovery: %v", err)
			}
			env.Sup.Stop(5 * time.Second)
			env.StartSupervisor(env.PluginFlag("ct"))
			if m := ct4Status(t, env); m.MaxEntries != 256<<10 {
				t.Errorf("ct4 has %d entries after a clean restart, want the resized 256Ki", m.MaxEntries)
			}
		})
	}
}

// Auto-grow: a ct4 of 1024 entries that stays over 85% full for three
// checks doubles, with a metric and a log line.
func TestPrivilegedMapAutoGrow(t *testing.T) {
	addr := "127.0.0.1:9487"
	grow := func(c *supervisor.Config) {
		c.AutoGrow = &supervisor.AutoGrowConfig{Enabled: true, Interval: "200ms", Maps: []string{abi.MapCT4}}
	}
	env := e2e.New(t, "a")
	c := supervisor.Config{MapSizes: map[string]uint32{abi.MapCT4: 1024}}
	grow(&c)
	env.WriteConfig(c)
	env.Extra = []string{"--metrics-addr", addr}
	env.StartSupervisor(env.PluginFlag("ct"))
	fillCT(t, env, 900)
	waitFor(t, "ct4 to double", 10*time.Second, func() bool { return ct4Status(t, env).MaxEntries == 2048 })
	time.Sleep(time.Second) // three more checks: 900 of 2048 is not full
	if m := ct4Status(t, env); m.MaxEntries != 2048 {
		t.Errorf("ct4 %d entries, want 2048 once", m.MaxEntries)
	}
	if n := len(readCT(t, env)); n < 900 {
		t.Errorf("%d entries after auto-grow, want the 900", n)
	}
	body := scrape(t, env, addr)
	if !strings.Contains(body, `hotpath_map_resizes_total{map="ct4",reason="auto-grow"} 1`) {
		t.Errorf("no auto-grow metric in:\n%s", grepLines(body, "resize"))
	}
	if log := env.Log(env.Sup); !strings.Contains(log, "map auto-grown") {
		t.Errorf("no auto-grow log line")
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
