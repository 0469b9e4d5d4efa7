package pin

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
)

// kernelCopy copies every entry of src into dst inside the kernel: one
// program walks src with bpf_for_each_map_elem and updates dst from the
// callback, so no entry crosses into user space and back (a batch copy
// does both, ~6x slower on the 2-CPU VMs). It needs equal key and value
// sizes. It returns how many entries it copied and whether an update
// failed (a full dst).
func kernelCopy(dst, src *ebpf.Map) (int, bool, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "hp_map_copy", Type: ebpf.SchedCLS, License: "GPL",
		Instructions: copyInsns(dst, src),
	})
	if err != nil {
		return 0, false, fmt.Errorf("load in-kernel copy: %w", err)
	}
	defer prog.Close()
	ret, err := prog.Run(&ebpf.RunOptions{Data: make([]byte, 64)})
	if err != nil {
		return 0, false, fmt.Errorf("run in-kernel copy: %w", err)
	}
	return int(ret & 0x7fffffff), ret&0x80000000 != 0, nil
}

// copyInsns is
//
//	struct counts { u64 failed, copied; };
//	u32 hp_map_copy(void *ctx) {
//		struct counts c = {};
//		bpf_for_each_map_elem(&src, cb, &c, 0);
//		return c.copied | (c.failed ? 1u << 31 : 0);
//	}
//	static long cb(void *map, void *key, void *value, struct counts *c) {
//		if (bpf_map_update_elem(&dst, key, value, BPF_ANY) < 0) __sync_fetch_and_add(&c->failed, 1);
//		else __sync_fetch_and_add(&c->copied, 1);
//		return 0;
//	}
//
// with BTF function info, which the verifier wants for a callback. Shared
// maps hold at most 2^24 entries, so the count fits in 31 bits.
func copyInsns(dst, src *ebpf.Map) asm.Instructions {
	long := &btf.Int{Name: "long", Size: 8, Encoding: btf.Signed}
	ptr := &btf.Pointer{Target: &btf.Void{}}
	main := &btf.Func{Name: "hp_map_copy", Linkage: btf.GlobalFunc,
		Type: &btf.FuncProto{Return: long, Params: []btf.FuncParam{{Name: "ctx", Type: ptr}}}}
	cb := &btf.Func{Name: "hp_map_copy_cb", Linkage: btf.StaticFunc,
		Type: &btf.FuncProto{Return: long, Params: []btf.FuncParam{
			{Name: "map", Type: ptr}, {Name: "key", Type: ptr}, {Name: "value", Type: ptr}, {Name: "counts", Type: ptr}}}}
	return asm.Instructions{
		btf.WithFuncMetadata(asm.Mov.Imm(asm.R1, 0), main),
		asm.StoreMem(asm.RFP, -16, asm.R1, asm.DWord), // failed
		asm.StoreMem(asm.RFP, -8, asm.R1, asm.DWord),  // copied
		asm.LoadMapPtr(asm.R1, src.FD()),
		asm.Instruction{OpCode: asm.LoadImmOp(asm.DWord), Dst: asm.R2, Src: asm.PseudoFunc, Constant: -1}.WithReference("hp_map_copy_cb"),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -16),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnForEachMapElem.Call(),
		asm.LoadMem(asm.R0, asm.RFP, -8, asm.DWord),
		asm.LoadMem(asm.R1, asm.RFP, -16, asm.DWord),
		asm.JEq.Imm(asm.R1, 0, "hp_map_copy_out"),
		asm.Or.Imm32(asm.R0, -0x80000000),
		asm.Return().WithSymbol("hp_map_copy_out"),

		btf.WithFuncMetadata(asm.Mov.Reg(asm.R6, asm.R4).WithSymbol("hp_map_copy_cb"), cb),
		asm.LoadMapPtr(asm.R1, dst.FD()),
		asm.Mov.Imm(asm.R4, 0), // BPF_ANY; R2 and R3 are still key and value
		asm.FnMapUpdateElem.Call(),
		// Atomic adds leave the counters unknown to the verifier, so the
		// callback's states converge instead of counting up one by one.
		asm.Mov.Imm(asm.R1, 1),
		asm.JSLT.Imm(asm.R0, 0, "hp_map_copy_failed"),
		xadd8(asm.R6, asm.R1),
		asm.Ja.Label("hp_map_copy_next"),
		asm.StoreXAdd(asm.R6, asm.R1, asm.DWord).WithSymbol("hp_map_copy_failed"),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("hp_map_copy_next"),
		asm.Return(),
	}
}

// xadd8 is lock *(u64 *)(dst + 8) += src.
func xadd8(dst, src asm.Register) asm.Instruction {
	ins := asm.StoreXAdd(dst, src, asm.DWord)
	ins.Offset = 8
	return ins
}
