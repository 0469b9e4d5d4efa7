package plugintest

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
)

// Directions of Run.
const (
	Ingress = abi.AbiHpDirHP_DIR_INGRESS
	Egress  = abi.AbiHpDirHP_DIR_EGRESS
)

// Result is what one run of the pipeline returned.
type Result struct {
	Code   uint32 // tc return code: 0 ok, 2 shot, 7 redirect
	Packet []byte // the packet as the pipeline left it
	Mark   uint32 // skb->mark as the pipeline left it (RunOn only)
}

// RunOn is Run with the packet on device ifindex of the caller's network
// namespace (0: its loopback device, as Run), with skb->mark set to mark;
// the result carries the mark the pipeline left. Stages that look up
// routes (masquerade, forward) see the namespace's FIB.
func (h *Harness) RunOn(dir abi.AbiHpDir, ifindex int, mark uint32, pkt []byte) (Result, error) {
	prog := h.Entry.Ingress
	if dir == Egress {
		prog = h.Entry.Egress
	}
	// struct __sk_buff from len to ifindex: mark at 2, ifindex at 10.
	skb := make([]uint32, 11)
	skb[2], skb[10] = mark, uint32(ifindex)
	skbOut := make([]uint32, 64) // room for a whole struct __sk_buff
	out := make([]byte, len(pkt)+256)
	opts := &ebpf.RunOptions{Data: pkt, DataOut: out, Context: skb, ContextOut: skbOut}
	ret, err := prog.Run(opts)
	if err != nil {
		return Result{}, fmt.Errorf("test run: %w", err)
	}
	return Result{Code: ret, Packet: opts.DataOut, Mark: skbOut[2]}, nil
}

// Run sends pkt through the entry program of direction dir, and so through
// every stage of the live generation.
func (h *Harness) Run(dir abi.AbiHpDir, pkt []byte) (Result, error) {
	prog := h.Entry.Ingress
	if dir == Egress {
		prog = h.Entry.Egress
	}
	out := make([]byte, len(pkt)+256)
	opts := &ebpf.RunOptions{Data: pkt, DataOut: out}
	ret, err := prog.Run(opts)
	if err != nil {
		return Result{}, fmt.Errorf("test run: %w", err)
	}
	return Result{Code: ret, Packet: opts.DataOut}, nil
}

// Metric sums the per-CPU datapath counter of (reason, dir).
func (h *Harness) Metric(t testing.TB, r abi.Reason, dir abi.AbiHpDir) abi.Metric {
	t.Helper()
	var per []abi.Metric
	if err := h.Maps[abi.MapMetrics].Lookup(abi.MetricKey(r, uint32(dir)), &per); err != nil {
		t.Fatalf("read metric %s: %v", abi.ReasonName(r), err)
	}
	var sum abi.Metric
	for _, m := range per {
		sum.Packets += m.Packets
		sum.Bytes += m.Bytes
	}
	return sum
}

// Drops counts the packets dropped so far, by reason name, both directions;
// reasons without drops are left out.
func (h *Harness) Drops(t testing.TB) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for r := abi.Reason(0); r < abi.Reason(abi.Reasons); r++ {
		if !abi.Dropped(r) {
			continue
		}
		n := h.Metric(t, r, Ingress).Packets + h.Metric(t, r, Egress).Packets
		if n > 0 {
			out[abi.ReasonName(r)] = n
		}
	}
	return out
}

// Dump returns every entry of a CT map (abi.MapCT4, abi.MapCTAny4).
func (h *Harness) Dump(t testing.TB, name string) map[abi.CTTuple]abi.CTEntry {
	t.Helper()
	out := map[abi.CTTuple]abi.CTEntry{}
	var k abi.CTTuple
	var v abi.CTEntry
	it := h.Maps[name].Iterate()
	for it.Next(&k, &v) {
		out[k] = v
	}
	if err := it.Err(); err != nil {
		t.Fatalf("dump %s: %v", name, err)
	}
	return out
}
