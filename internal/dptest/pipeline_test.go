package dptest_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/plugintest/packet"
	"github.com/hotpath/hotpath/internal/dptest"
	"github.com/hotpath/hotpath/plugins/ct"
	"github.com/hotpath/hotpath/supervisor/pipeline"
)

var (
	src = netip.MustParseAddrPort("10.240.1.2:40000")
	dst = netip.MustParseAddrPort("10.240.2.2:80")
)

func TestPrivilegedPipelineMissedTailCallDrops(t *testing.T) {
	h := dptest.New(t)
	prog, _, err := ct.LoadStage(h.Layout, 1, ct.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	gen := h.Install(t, map[abi.Slot]*ebpf.Program{abi.AbiHpSlotHP_SLOT_CT: prog})
	pkt := packet.TCP(src, dst, packet.SYN, nil)
	if r, err := h.Run(abi.AbiHpDirHP_DIR_INGRESS, pkt); err != nil || r.Code != 0 {
		t.Fatalf("with the stage in place: %+v %v", r, err)
	}
	// Empty the occupied slot behind the pipeline's back.
	idx := pipeline.Bank(gen)*abi.Slots + uint32(abi.AbiHpSlotHP_SLOT_CT)
	if err := h.Maps.ByName[abi.MapCalls].Delete(idx); err != nil {
		t.Fatal(err)
	}
	r, err := h.Run(abi.AbiHpDirHP_DIR_INGRESS, pkt)
	if err != nil || r.Code != 2 {
		t.Fatalf("missing stage: verdict %d (%v), want drop", r.Code, err)
	}
	if m := h.Metric(t, abi.AbiHpReasonHP_R_MISSED_TAIL_CALL, abi.AbiHpDirHP_DIR_INGRESS); m.Packets != 1 || m.Bytes != uint64(len(pkt)) {
		t.Fatalf("missed tail calls counted %+v", m)
	}
}

func TestPrivilegedPipelineBanks(t *testing.T) {
	h := dptest.New(t)
	prog, _, err := ct.LoadStage(h.Layout, 1, ct.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	progs := map[abi.Slot]*ebpf.Program{abi.AbiHpSlotHP_SLOT_CT: prog}
	gen := h.Install(t, progs)
	if err := h.Pipe.Prepare(gen+abi.Banks, progs); !errors.Is(err, pipeline.ErrBankLive) {
		t.Fatalf("writing the live bank: %v, want ErrBankLive", err)
	}
	for dir := uint32(0); dir < 2; dir++ {
		if mask := h.Pipe.Mask(gen, dir); mask != 1<<abi.AbiHpSlotHP_SLOT_CT {
			t.Fatalf("mask of direction %d: %#x", dir, mask)
		}
	}
	next := h.Install(t, nil) // a generation with no stages: packets pass untouched
	if r, err := h.Run(abi.AbiHpDirHP_DIR_INGRESS, packet.TCP(src, dst, packet.SYN, nil)); err != nil || r.Code != 0 {
		t.Fatalf("empty generation: %+v %v", r, err)
	}
	if n := len(h.Dump(t, abi.MapCT4)); n != 0 {
		t.Fatalf("empty generation %d still ran the ct stage (%d entries)", next, n)
	}
	if err := h.Pipe.Settle(); err != nil {
		t.Fatal(err)
	}
	if err := h.Pipe.Release(gen); err != nil {
		t.Fatal(err)
	}
	ids, err := h.Pipe.ProgramIDs(gen)
	if err != nil || len(ids) != 0 {
		t.Fatalf("released bank still holds %v (%v)", ids, err)
	}
}

// TestPrivilegedPipelineHooks: a slot declared for one hook is skipped,
// without a tail call, by packets at the other.
func TestPrivilegedPipelineHooks(t *testing.T) {
	h := dptest.New(t)
	prog, _, err := ct.LoadStage(h.Layout, 1, ct.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	if err := h.Pipe.Settle(); err != nil {
		t.Fatal(err)
	}
	gen := uint32(1)
	err = h.Pipe.PrepareHooks(gen, map[abi.Slot]*ebpf.Program{abi.AbiHpSlotHP_SLOT_CT: prog},
		map[abi.Slot]pipeline.Hooks{abi.AbiHpSlotHP_SLOT_CT: pipeline.HookEgress})
	if err != nil {
		t.Fatal(err)
	}
	h.Pipe.Flip(gen)
	if in, eg := h.Pipe.Mask(gen, 0), h.Pipe.Mask(gen, 1); in != 0 || eg != 1<<abi.AbiHpSlotHP_SLOT_CT {
		t.Fatalf("masks ingress %#x egress %#x", in, eg)
	}
	if _, err := h.Run(abi.AbiHpDirHP_DIR_INGRESS, packet.TCP(src, dst, packet.SYN, nil)); err != nil {
		t.Fatal(err)
	}
	if n := len(h.Dump(t, abi.MapCT4)); n != 0 {
		t.Fatalf("egress-only stage ran at ingress (%d entries)", n)
	}
	if _, err := h.Run(abi.AbiHpDirHP_DIR_EGRESS, packet.TCP(src, dst, packet.SYN, nil)); err != nil {
		t.Fatal(err)
	}
	if n := len(h.Dump(t, abi.MapCT4)); n != 1 {
		t.Fatalf("egress-only stage did not run at egress (%d entries)", n)
	}
	if _, err := pipeline.ParseHooks([]string{"sideways"}); err == nil {
		t.Error("bad hook name accepted")
	}
}
