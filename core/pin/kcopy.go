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
// does both, ~3x slower on the 2-CPU VMs). It needs equal key and value
// sizes. It returns how many updates failed (a full dst).
func kernelCopy(dst, src *ebpf.Map) (int, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "hp_map_copy", Type: ebpf.SchedCLS, License: "GPL",
		Instructions: copyInsns(dst, src),
	})
	if err != nil {
		return 0, fmt.Errorf("load in-kernel copy: %w", err)
	}
	defer prog.Close()
	failed, err := prog.Run(&ebpf.RunOptions{Data: make([]byte, 64)})
	if err != nil {
		return 0, fmt.Errorf("run in-kernel copy: %w", err)
	}
	return int(failed), nil
}

// copyInsns is
//
//	long hp_map_copy(void *ctx) { u64 failed = 0; bpf_for_each_map_elem(&src, cb, &failed, 0); return failed; }
//	static long cb(void *map, void *key, void *value, u64 *failed) {
//		if (bpf_map_update_elem(&dst, key, value, BPF_ANY) < 0) (*failed)++;
//		return 0;
//	}
//
// with BTF function info, which the verifier wants for a callback.
func copyInsns(dst, src *ebpf.Map) asm.Instructions {
	long := &btf.Int{Name: "long", Size: 8, Encoding: btf.Signed}
	ptr := &btf.Pointer{Target: &btf.Void{}}
	main := &btf.Func{Name: "hp_map_copy", Linkage: btf.GlobalFunc,
		Type: &btf.FuncProto{Return: long, Params: []btf.FuncParam{{Name: "ctx", Type: ptr}}}}
	cb := &btf.Func{Name: "hp_map_copy_cb", Linkage: btf.StaticFunc,
		Type: &btf.FuncProto{Return: long, Params: []btf.FuncParam{
			{Name: "map", Type: ptr}, {Name: "key", Type: ptr}, {Name: "value", Type: ptr}, {Name: "failed", Type: ptr}}}}
	return asm.Instructions{
		btf.WithFuncMetadata(asm.StoreImm(asm.RFP, -8, 0, asm.DWord), main),
		asm.LoadMapPtr(asm.R1, src.FD()),
		asm.Instruction{OpCode: asm.LoadImmOp(asm.DWord), Dst: asm.R2, Src: asm.PseudoFunc, Constant: -1}.WithReference("hp_map_copy_cb"),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -8),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnForEachMapElem.Call(),
		asm.LoadMem(asm.R0, asm.RFP, -8, asm.DWord),
		asm.Return(),

		btf.WithFuncMetadata(asm.Mov.Reg(asm.R6, asm.R4).WithSymbol("hp_map_copy_cb"), cb),
		asm.LoadMapPtr(asm.R1, dst.FD()),
		asm.Mov.Imm(asm.R4, 0), // BPF_ANY; R2 and R3 are still key and value
		asm.FnMapUpdateElem.Call(),
		asm.JSGE.Imm(asm.R0, 0, "hp_map_copy_ok"),
		asm.LoadMem(asm.R1, asm.R6, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R6, 0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("hp_map_copy_ok"),
		asm.Return(),
	}
}
