// Package pipeline manages the generation banks of the pipeline prog array
// and the flip between them.
//
// Generation g occupies bank g % abi.Banks of the single pinned prog array.
// The entry program reads the active generation once per packet and every
// stage tail-calls within that packet's bank, so a packet runs exactly one
// generation end to end. Building generation N+1 writes a bank no packet can
// enter; the flip is one aligned 4-byte store into the mmapped config map.
package pipeline

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/hotpath/hotpath/core/abi"
)

// Pipeline writes banks and flips generations. It is owned by the supervisor.
type Pipeline struct {
	calls   *ebpf.Map
	config  *ebpf.Map
	mem     []byte
	barrier *barrier
}

// Open maps the config map and prepares the barrier. calls and config are the
// shared maps (pinned by the caller).
func Open(calls, config *ebpf.Map) (*Pipeline, error) {
	mem, err := unix.Mmap(config.FD(), 0, int(unsafe.Sizeof(abi.Config{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap config map: %w", err)
	}
	b, err := newBarrier()
	if err != nil {
		unix.Munmap(mem)
		return nil, err
	}
	p := &Pipeline{calls: calls, config: config, mem: mem, barrier: b}
	if v := p.word(offABIVersion); atomic.LoadUint32(v) == 0 {
		atomic.StoreUint32(v, abi.Version)
	}
	return p, nil
}

// Close releases the mapping; kernel objects stay pinned.
func (p *Pipeline) Close() error {
	p.barrier.close()
	return unix.Munmap(p.mem)
}

var (
	offActiveGen  = unsafe.Offsetof(abi.Config{}.ActiveGen)
	offABIVersion = unsafe.Offsetof(abi.Config{}.AbiVersion)
	offBankMask   = unsafe.Offsetof(abi.Config{}.BankMask)
	offBankFirst  = unsafe.Offsetof(abi.Config{}.BankFirstNs)
)

func (p *Pipeline) word(off uintptr) *uint32 {
	return (*uint32)(unsafe.Pointer(&p.mem[off]))
}

func (p *Pipeline) maskWord(bank, dir uint32) *uint32 {
	return p.word(offBankMask + uintptr(bank*2+dir)*4)
}

// Hooks says at which TCX hooks a slot's program runs.
type Hooks uint8

// Hook bits.
const (
	HookIngress Hooks = 1 << 0
	HookEgress  Hooks = 1 << 1
	HookBoth          = HookIngress | HookEgress
)

// ParseHooks reads hook names ("ingress", "egress"); none means both.
func ParseHooks(names []string) (Hooks, error) {
	var h Hooks
	for _, n := range names {
		switch n {
		case "ingress":
			h |= HookIngress
		case "egress":
			h |= HookEgress
		default:
			return 0, fmt.Errorf("hook %q: want ingress or egress", n)
		}
	}
	if h == 0 {
		h = HookBoth
	}
	return h, nil
}

func (p *Pipeline) firstWord(bank uint32) *uint64 {
	return (*uint64)(unsafe.Pointer(&p.mem[offBankFirst+uintptr(bank)*8]))
}

// FirstPacket is when (CLOCK_MONOTONIC) the first packet entered gen's bank
// since it was prepared; zero while none has.
func (p *Pipeline) FirstPacket(gen uint32) time.Duration {
	return time.Duration(atomic.LoadUint64(p.firstWord(Bank(gen))))
}

// Monotonic reads CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns.
func Monotonic() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

// Bank is the bank generation gen uses.
func Bank(gen uint32) uint32 { return gen % abi.Banks }

// Active is the generation packets enter now (0: none yet).
func (p *Pipeline) Active() uint32 { return atomic.LoadUint32(p.word(offActiveGen)) }

// ABIVersion is the ABI version recorded in the config map.
func (p *Pipeline) ABIVersion() uint32 { return atomic.LoadUint32(p.word(offABIVersion)) }

// Mask is the occupied-slot mask of gen's bank for direction dir (0 ingress, 1 egress).
func (p *Pipeline) Mask(gen, dir uint32) uint32 {
	return atomic.LoadUint32(p.maskWord(Bank(gen), dir&1))
}

// ErrBankLive is returned when a write would touch the bank packets use.
var ErrBankLive = errors.New("bank is live")

// Prepare fills gen's bank with progs (slot -> program), each run at both
// hooks. See PrepareHooks.
func (p *Pipeline) Prepare(gen uint32, progs map[abi.Slot]*ebpf.Program) error {
	return p.PrepareHooks(gen, progs, nil)
}

// PrepareHooks fills gen's bank with progs and records, per direction, the
// slots a packet enters: a slot missing from hooks runs at both. The bank
// must not be live, and the caller must have called Settle since it was
// last live, so no packet still runs in it.
func (p *Pipeline) PrepareHooks(gen uint32, progs map[abi.Slot]*ebpf.Program, hooks map[abi.Slot]Hooks) error {
	bank := Bank(gen)
	if active := p.Active(); active != 0 && Bank(active) == bank {
		return fmt.Errorf("prepare generation %d: bank %d: %w (generation %d)", gen, bank, ErrBankLive, active)
	}
	var mask [2]uint32
	for slot := uint32(0); slot < abi.Slots; slot++ {
		idx := bank*abi.Slots + slot
		prog, ok := progs[abi.Slot(slot)]
		if !ok || prog == nil {
			if err := p.calls.Delete(idx); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("clear slot %s of generation %d: %w", abi.SlotName(abi.Slot(slot)), gen, err)
			}
			continue
		}
		if err := p.calls.Put(idx, prog); err != nil {
			return fmt.Errorf("insert slot %s of generation %d: %w", abi.SlotName(abi.Slot(slot)), gen, err)
		}
		h, ok := hooks[abi.Slot(slot)]
		if !ok || h == 0 {
			h = HookBoth
		}
		for dir := uint32(0); dir < 2; dir++ {
			if h&(1<<dir) != 0 {
				mask[dir] |= 1 << slot
			}
		}
	}
	atomic.StoreUint32(p.maskWord(bank, 0), mask[0])
	atomic.StoreUint32(p.maskWord(bank, 1), mask[1])
	atomic.StoreUint64(p.firstWord(bank), 0)
	return nil
}

// Flip makes gen the generation every new packet enters, on every device at
// once. It returns the previous generation.
func (p *Pipeline) Flip(gen uint32) uint32 {
	return atomic.SwapUint32(p.word(offActiveGen), gen)
}

// Settle returns once every packet that could have read an older generation
// has left the pipeline (an RCU grace period).
func (p *Pipeline) Settle() error { return p.barrier.wait() }

// Release empties gen's bank so its programs can be freed. It refuses the
// live bank; call Settle after the flip away from gen first.
func (p *Pipeline) Release(gen uint32) error {
	return p.Prepare(gen, nil)
}

// ProgramIDs lists the program id in each occupied slot of gen's bank.
func (p *Pipeline) ProgramIDs(gen uint32) (map[abi.Slot]ebpf.ProgramID, error) {
	bank := Bank(gen)
	out := make(map[abi.Slot]ebpf.ProgramID)
	for slot := uint32(0); slot < abi.Slots; slot++ {
		var id uint32
		err := p.calls.Lookup(bank*abi.Slots+slot, &id)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read slot %d of generation %d: %w", slot, gen, err)
		}
		out[abi.Slot(slot)] = ebpf.ProgramID(id)
	}
	return out, nil
}
