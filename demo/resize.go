package demo

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/supervisor"
)

const (
	resizeEntries = 100_000 // synthetic CT entries besides the live flows
	resizeStreams = 10
)

// resize grows ct4 and shrinks it back while TCP streams run and the map
// holds a hundred thousand more entries: every entry and counter stays,
// no stream notices.
func (d *Demo) resize(ctx context.Context) error {
	_, streams, err := d.webStreams(ctx, "8080", resizeStreams)
	if err != nil {
		return err
	}
	defer stopStreams(streams)
	d.step("Live map resize: ct4 holds %d more entries; %d streams client -> web3 run while it grows and shrinks back", resizeEntries, resizeStreams)
	ct, err := ebpf.LoadPinnedMap(pin.Layout{Root: d.lab.BPFFS}.Map(abi.MapCT4), nil)
	if err != nil {
		return err
	}
	before, err := fillDemoCT(ct)
	ct.Close()
	if err != nil {
		return err
	}
	from := d.ct4Size()
	if _, err := d.cli(true, "map", "resize", "ct4", "--max-entries", fmt.Sprint(2*from), "--dry-run"); err != nil {
		return err
	}
	var took []string
	for _, size := range []uint32{2 * from, from} {
		start := time.Now()
		if _, err := d.cli(true, "map", "resize", "ct4", "--max-entries", fmt.Sprint(size)); err != nil {
			return err
		}
		took = append(took, time.Since(start).Round(time.Millisecond).String())
	}
	ct, err = ebpf.LoadPinnedMap(pin.Layout{Root: d.lab.BPFFS}.Map(abi.MapCT4), nil)
	if err != nil {
		return err
	}
	defer ct.Close()
	kept := 0
	for k, b := range before {
		var v abi.CTEntry
		if ct.Lookup(&k, &v) == nil && v.Packets >= b {
			kept++
		}
	}
	broken := brokenStreams(streams)
	if kept != len(before) || broken != 0 {
		return fmt.Errorf("resize under traffic: %d of %d entries kept, %d of %d streams broken", kept, len(before), broken, len(streams))
	}
	d.fact("ct4 resized %d -> %d -> %d entries live (%s, %s): %d of %d entries kept with their counters, %d of %d streams broken",
		from, 2*from, from, took[0], took[1], kept, len(before), broken, len(streams))
	return nil
}

func (d *Demo) ct4Size() uint32 {
	var st supervisor.Status
	if err := d.node.JSON(&st, "status"); err == nil {
		for _, m := range st.Maps {
			if m.Name == abi.MapCT4 {
				return m.MaxEntries
			}
		}
	}
	return 512 << 10
}

// fillDemoCT writes the synthetic entries (198.18.0.0/15, alive for an
// hour) and returns their packet counters.
func fillDemoCT(m *ebpf.Map) (map[abi.CTTuple]uint64, error) {
	keys, vals := make([]abi.CTTuple, resizeEntries), make([]abi.CTEntry, resizeEntries)
	out := make(map[abi.CTTuple]uint64, resizeEntries)
	life := ctmap.Now() + 3600
	for i := range keys {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], 0xc6120000+uint32(i/50000))
		keys[i] = abi.CTTuple{Saddr: binary.NativeEndian.Uint32(a[:]), Daddr: 0x01ff000a, Sport: uint16(i % 50000), Dport: 0x5000, Nexthdr: 6, Flags: abi.TupleOut}
		vals[i] = abi.CTEntry{Packets: uint64(i%100 + 1), Bytes: uint64(i%100+1) * 64, Lifetime: life}
		out[keys[i]] = vals[i].Packets
	}
	if _, err := m.BatchUpdate(keys, vals, nil); err != nil {
		return nil, fmt.Errorf("fill ct4: %w", err)
	}
	return out, nil
}
