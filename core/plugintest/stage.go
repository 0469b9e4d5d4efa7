package plugintest

import (
	"encoding/binary"
	"fmt"
	"runtime"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
)

// Context is the packet context the entry program would leave for pkt (an
// Ethernet/IPv4 frame like those of package packet) at hook dir: addresses
// and ports as the datapath stores them (network byte order), offsets,
// protocol, TCP flags and parse bits. Stages before yours add their results
// (e.g. lb's svc_id and scratch) on top.
func Context(dir abi.AbiHpDir, pkt []byte) abi.Ctx {
	c := abi.Ctx{Dir: uint8(dir), Len: uint32(len(pkt))}
	if len(pkt) < 34 || binary.BigEndian.Uint16(pkt[12:]) != 0x0800 {
		return c
	}
	ihl := int(pkt[14]&0x0f) * 4
	c.Parse = uint8(abi.AbiHpParseBitHP_P_IPV4)
	c.L3Off, c.L4Off = 14, uint16(14+ihl)
	c.Proto = pkt[23]
	c.Saddr = binary.NativeEndian.Uint32(pkt[26:])
	c.Daddr = binary.NativeEndian.Uint32(pkt[30:])
	l4 := pkt[14+ihl:]
	if (c.Proto == 6 || c.Proto == 17) && len(l4) >= 4 {
		c.Parse |= uint8(abi.AbiHpParseBitHP_P_L4)
		c.Sport = binary.NativeEndian.Uint16(l4[0:])
		c.Dport = binary.NativeEndian.Uint16(l4[2:])
		if c.Proto == 6 && len(l4) >= 14 {
			c.TcpFlags = l4[13]
		}
	}
	return c
}

// RunStage runs one stage program alone on pkt, as if the stages before it
// had left the packet context c (c.Dir selects the hook), and returns what
// the stage left in the context. c.Mask is cleared, so the stage ends the
// pipeline where it would tail-call the next slot and its verdict is the
// run's return code. Use it to test a stage against the contract of the
// slots before it (bpf/lib/lb.h for lb-select) without their plugins.
func (h *Harness) RunStage(prog *ebpf.Program, c abi.Ctx, pkt []byte) (Result, abi.Ctx, error) {
	c.Mask = 0
	dir := uint32(c.Dir & 1)
	// The context lives in a per-CPU map and the run happens on whichever
	// CPU this thread is on: give every CPU the same context, then find the
	// one the stage changed.
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return Result{}, c, err
	}
	in := make([]abi.Ctx, cpus)
	for i := range in {
		in[i] = c
	}
	pctx := h.Maps[abi.MapPctx]
	if err := pctx.Put(dir, in); err != nil {
		return Result{}, c, fmt.Errorf("write packet context: %w", err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	out := make([]byte, len(pkt)+256)
	opts := &ebpf.RunOptions{Data: pkt, DataOut: out, Context: skbCB(dir)}
	ret, err := prog.Run(opts)
	if err != nil {
		return Result{}, c, fmt.Errorf("test run: %w", err)
	}
	var after []abi.Ctx
	if err := pctx.Lookup(dir, &after); err != nil {
		return Result{}, c, fmt.Errorf("read packet context: %w", err)
	}
	left := c
	for _, a := range after {
		if a != c {
			left = a
			break
		}
	}
	return Result{Code: ret, Packet: opts.DataOut}, left, nil
}

// skbCB is the start of a struct __sk_buff up to cb[4], with cb[0] holding
// the direction as the entry program records it (HP_CB_DIR): the fields
// before cb are ones BPF_PROG_TEST_RUN requires to be zero or accepts as such.
func skbCB(dir uint32) []uint32 {
	skb := make([]uint32, 17) // len .. tc_index, then cb[0..4]
	skb[12] = dir
	return skb
}
