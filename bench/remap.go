package bench

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/supervisor"
)

const (
	// remapEntries synthetic CT entries fill ct4 for the resize rows.
	remapEntries = 1_000_000
	// ct4 alternates between these sizes, both with room for the entries
	// (a resize keeps 10% of the new size free).
	remapBig   = 2 << 20
	remapSmall = 1536 << 10
	// aomRepeat packets per BPF_PROG_TEST_RUN sample of the lookup rows.
	aomRepeat = 1_000_000
)

// remapSuite measures live map resize (supervisor/remap.go): a real
// supervisor with the ct and lb plugins under TCP streams and a UDP probe
// through VIPs resizes ct4 holding 1M entries back and forth; and the
// alternative switch the design asked to weigh, a one-slot ARRAY_OF_MAPS
// in front of ct4, by its per-packet cost.
func remapSuite(c *Context) ([]Row, error) {
	rows, err := aomRows(c)
	if err != nil {
		return nil, err
	}
	lab, err := remapLabRows(c)
	return append(rows, lab...), err
}

func remapLabRows(c *Context) ([]Row, error) {
	u, err := newUpgradeLab(c, "")
	if err != nil {
		return nil, err
	}
	defer u.close()
	// Room first (few entries: quick), then the million.
	if _, err := u.h.resize(abi.MapCT4, remapBig); err != nil {
		return nil, err
	}
	if err := fillSynthetic(u.e.lab.BPFFS, remapEntries); err != nil {
		return nil, err
	}
	dropsBefore, err := u.drops()
	if err != nil {
		return nil, err
	}
	var moved, total, pause, lost, broken []float64
	var note string
	for i := 0; i < c.LabRuns; i++ {
		size := uint32(remapSmall)
		if i%2 == 1 {
			size = remapBig
		}
		_, lost0 := u.udp.counts()
		broken0 := u.broken()
		res, err := u.h.resize(abi.MapCT4, size)
		if err != nil {
			return nil, fmt.Errorf("resize ct4 to %d: %w", size, err)
		}
		time.Sleep(udpWait + udpInterval)
		_, lost1 := u.udp.counts()
		r := res.Remap.Maps[0]
		if r.Entries < remapEntries {
			note = fmt.Sprintf("a resize copied %d entries, fewer than the %d filled", r.Entries, remapEntries)
		}
		moved = append(moved, (r.Copy + r.DeltaTook + r.MergeTook).Seconds())
		total = append(total, res.Remap.Took.Seconds())
		pause = append(pause, res.Remap.Pause.Seconds())
		lost = append(lost, float64(lost1-lost0))
		broken = append(broken, float64(u.broken()-broken0))
		c.Logf("ct4 %d -> %d: %d entries, copy %s, delta %d in %s, merged %d in %s, total %s",
			r.From, r.To, r.Entries, r.Copy, r.Delta, r.DeltaTook, r.Merged, r.MergeTook, res.Remap.Took)
	}
	dropsAfter, err := u.drops()
	if err != nil {
		return nil, err
	}
	return []Row{
		{Name: "map resize: ct4 with 1M entries, 2Mi <-> 1.5Mi, under traffic: migration (copy + delta before the switch + merge after)",
			Unit: "s", Samples: moved, Target: Below(2), Note: note},
		{Name: "map resize: same, total (copy, ct and lb reload into a new generation, flip, grace period, merge, cleanup)", Unit: "s", Samples: total},
		{Name: "map resize: same, ct and lb control paused (GC, commands) per resize", Unit: "s", Samples: pause},
		{Name: "map resize: UDP datagrams lost per resize (probe through a VIP, ~100/s)", Unit: "count", Samples: lost, Target: Below(0), Tail: true},
		{Name: "map resize: TCP streams broken per resize (8 streams through a VIP)", Unit: "count", Samples: broken, Target: Below(0), Tail: true},
		{Name: fmt.Sprintf("map resize: datapath drops over %d resizes (missed tail call, no context, parse, generation, no backend)", len(total)),
			Unit: "count", Samples: []float64{float64(dropsAfter - dropsBefore)}, Target: Below(0)},
	}, nil
}

// resize is `hotpath map resize NAME --max-entries N -o json`.
func (h *hotpathRun) resize(name string, size uint32) (*supervisor.ResizeResult, error) {
	out, err := h.cli("map", "resize", name, "--max-entries", fmt.Sprint(size), "-o", "json")
	if err != nil {
		return nil, err
	}
	var res supervisor.ResizeResult
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("resize %s: decode %q: %w", name, tail(out, 300), err)
	}
	if res.Remap == nil || len(res.Remap.Maps) != 1 {
		return nil, fmt.Errorf("resize %s: no remap in the answer", name)
	}
	return &res, nil
}

// fillSynthetic writes n CT entries (198.18.0.0/15 sources, alive for a
// day) into the pinned ct4 with batch updates.
func fillSynthetic(bpffs string, n int) error {
	m, err := ebpf.LoadPinnedMap(pin.Layout{Root: bpffs}.Map(abi.MapCT4), nil)
	if err != nil {
		return err
	}
	defer m.Close()
	keys, vals := make([]abi.CTTuple, n), make([]abi.CTEntry, n)
	life := ctmap.Now() + 86400
	for i := range keys {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], 0xc6120000+uint32(i/50000))
		keys[i] = abi.CTTuple{Saddr: binary.NativeEndian.Uint32(a[:]), Daddr: 0x01ff000a, Sport: uint16(i % 50000), Dport: 0x5000, Nexthdr: 6, Flags: abi.TupleOut}
		vals[i] = abi.CTEntry{Packets: uint64(i%1000 + 1), Bytes: uint64(i%1000+1) * 100, Lifetime: life}
	}
	for lo := 0; lo < n; lo += 1 << 16 {
		hi := min(lo+1<<16, n)
		if _, err := m.BatchUpdate(keys[lo:hi], vals[lo:hi], nil); err != nil {
			return fmt.Errorf("fill ct4: %w", err)
		}
	}
	return nil
}

// aomRows compares one CT lookup straight in a 256Ki ct4-shaped LRU map
// with the same lookup through a one-slot ARRAY_OF_MAPS holding it (what a
// switch by swapping the inner map would cost every packet), both from a
// tc program run by BPF_PROG_TEST_RUN over a 64-byte packet.
func aomRows(c *Context) ([]Row, error) {
	specs, err := pin.SharedSpecs()
	if err != nil {
		return nil, err
	}
	spec := specs[abi.MapCT4].Copy()
	spec.MaxEntries, spec.Pinning = 256<<10, ebpf.PinNone
	ct, err := ebpf.NewMap(spec)
	if err != nil {
		return nil, err
	}
	defer ct.Close()
	key := abi.CTTuple{Saddr: 0x0100000a, Daddr: 0x0200000a, Sport: 0x3412, Dport: 0x5000, Nexthdr: 6}
	if err := ct.Put(&key, &abi.CTEntry{Packets: 1, Lifetime: ctmap.Now() + 3600}); err != nil {
		return nil, err
	}
	outer, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.ArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 1, InnerMap: spec})
	if err != nil {
		return nil, fmt.Errorf("create ARRAY_OF_MAPS: %w", err)
	}
	defer outer.Close()
	if err := outer.Put(uint32(0), ct); err != nil {
		return nil, fmt.Errorf("insert ct map into ARRAY_OF_MAPS: %w", err)
	}
	direct, err := lookupProg(ct, nil, key)
	if err != nil {
		return nil, err
	}
	defer direct.Close()
	indirect, err := lookupProg(nil, outer, key)
	if err != nil {
		return nil, err
	}
	defer indirect.Close()
	pkt := make([]byte, 64)
	var d, in []float64
	for i := 0; i < c.Runs; i++ {
		for _, x := range []struct {
			p   *ebpf.Program
			out *[]float64
		}{{direct, &d}, {indirect, &in}} {
			t, err := benchProg(x.p, pkt, aomRepeat)
			if err != nil {
				return nil, err
			}
			*x.out = append(*x.out, float64(t.Nanoseconds()))
		}
	}
	return []Row{{
		Name: "switch alternative: CT lookup + in-place add through a one-slot ARRAY_OF_MAPS (inner map swapped on resize), per packet",
		Unit: "ns", Samples: in, BaseName: "the same lookup straight in ct4 (resize reloads programs into a new generation)", Base: d,
	}}, nil
}

// lookupProg builds a tc program that looks key up in ct (or in the map
// in slot 0 of outer), adds 1 to the entry's packets if found and passes
// the packet.
func lookupProg(ct, outer *ebpf.Map, key abi.CTTuple) (*ebpf.Program, error) {
	var kb [16]byte
	binary.NativeEndian.PutUint32(kb[0:], key.Daddr)
	binary.NativeEndian.PutUint32(kb[4:], key.Saddr)
	binary.NativeEndian.PutUint16(kb[8:], key.Dport)
	binary.NativeEndian.PutUint16(kb[10:], key.Sport)
	kb[12], kb[13] = key.Nexthdr, key.Flags
	insns := asm.Instructions{
		asm.LoadImm(asm.R1, int64(binary.NativeEndian.Uint64(kb[0:])), asm.DWord),
		asm.StoreMem(asm.RFP, -16, asm.R1, asm.DWord),
		asm.LoadImm(asm.R1, int64(binary.NativeEndian.Uint64(kb[8:])), asm.DWord),
		asm.StoreMem(asm.RFP, -8, asm.R1, asm.DWord),
	}
	if outer != nil {
		insns = append(insns,
			asm.StoreImm(asm.RFP, -20, 0, asm.Word),
			asm.LoadMapPtr(asm.R1, outer.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -20),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "out"),
			asm.Mov.Reg(asm.R1, asm.R0),
		)
	} else {
		insns = append(insns, asm.LoadMapPtr(asm.R1, ct.FD()))
	}
	insns = append(insns,
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -16),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	)
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SchedCLS, License: "GPL", Instructions: insns})
	if err != nil {
		return nil, fmt.Errorf("load lookup program: %w", err)
	}
	return p, nil
}
