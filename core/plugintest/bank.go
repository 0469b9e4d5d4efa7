package plugintest

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/hotpath/hotpath/core/abi"
)

// banks writes generation banks the way the ABI defines them (bpf/lib/abi.h):
// generation g's programs at index (g % Banks) * Slots + slot of the calls
// prog array, the occupied-slot mask per direction in config.bank_mask, and
// the flip as one aligned 4-byte store of config.active_gen into the
// mmapped config map. The supervisor's pipeline does more (grace periods,
// release, adoption); a test harness needs only this.
type banks struct {
	calls *ebpf.Map
	mem   []byte
	gen   uint32
}

func openBanks(maps map[string]*ebpf.Map) (*banks, error) {
	cfg := maps[abi.MapConfig]
	mem, err := unix.Mmap(cfg.FD(), 0, int(unsafe.Sizeof(abi.Config{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap config map: %w", err)
	}
	b := &banks{calls: maps[abi.MapCalls], mem: mem}
	atomic.StoreUint32(b.word(unsafe.Offsetof(abi.Config{}.AbiVersion)), abi.Version)
	return b, nil
}

func (b *banks) close() { unix.Munmap(b.mem) }

func (b *banks) word(off uintptr) *uint32 { return (*uint32)(unsafe.Pointer(&b.mem[off])) }

func (b *banks) mask(bank, dir uint32) *uint32 {
	return b.word(unsafe.Offsetof(abi.Config{}.BankMask) + uintptr(bank*2+dir)*4)
}

// fill writes gen's bank; hooks maps a slot to the TCX hooks it runs at
// ("ingress", "egress"); a slot not listed runs at both, as in Describe.
func (b *banks) fill(gen uint32, progs map[abi.Slot]*ebpf.Program, hooks map[string][]string) error {
	bank := gen % abi.Banks
	var mask [2]uint32
	for slot := uint32(0); slot < abi.Slots; slot++ {
		idx := bank*abi.Slots + slot
		prog := progs[abi.Slot(slot)]
		if prog == nil {
			if err := b.calls.Delete(idx); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("clear slot %s of generation %d: %w", abi.SlotName(abi.Slot(slot)), gen, err)
			}
			continue
		}
		if err := b.calls.Put(idx, prog); err != nil {
			return fmt.Errorf("insert slot %s of generation %d: %w", abi.SlotName(abi.Slot(slot)), gen, err)
		}
		dirs, err := hookDirs(hooks[abi.SlotName(abi.Slot(slot))])
		if err != nil {
			return fmt.Errorf("slot %s: %w", abi.SlotName(abi.Slot(slot)), err)
		}
		for dir := uint32(0); dir < 2; dir++ {
			if dirs[dir] {
				mask[dir] |= 1 << slot
			}
		}
	}
	atomic.StoreUint32(b.mask(bank, 0), mask[0])
	atomic.StoreUint32(b.mask(bank, 1), mask[1])
	return nil
}

func hookDirs(names []string) (dirs [2]bool, err error) {
	if len(names) == 0 {
		return [2]bool{true, true}, nil
	}
	for _, n := range names {
		switch n {
		case "ingress":
			dirs[0] = true
		case "egress":
			dirs[1] = true
		default:
			return dirs, fmt.Errorf("hook %q: want ingress or egress", n)
		}
	}
	return dirs, nil
}

func (b *banks) flip(gen uint32) {
	atomic.StoreUint32(b.word(unsafe.Offsetof(abi.Config{}.ActiveGen)), gen)
}

// Install makes progs (slot -> program, each run at both hooks) the next
// generation and flips to it. It returns the generation.
func (h *Harness) Install(t testing.TB, progs map[abi.Slot]*ebpf.Program) uint32 {
	t.Helper()
	return h.InstallHooks(t, progs, nil)
}

// InstallHooks is Install with the hooks a plugin declares for its slots
// (Description.Hooks: slot name -> "ingress"/"egress"), so packets at the
// other hook skip those slots as they do under the supervisor.
func (h *Harness) InstallHooks(t testing.TB, progs map[abi.Slot]*ebpf.Program, hooks map[string][]string) uint32 {
	t.Helper()
	gen := h.banks.gen + 1
	if err := h.banks.fill(gen, progs, hooks); err != nil {
		t.Fatal(err)
	}
	h.banks.flip(gen)
	h.banks.gen = gen
	return gen
}

// Gen is the generation Install made live last.
func (h *Harness) Gen() uint32 { return h.banks.gen }

// Use flips back to a generation installed earlier (its bank must not have
// been reused: at most abi.Banks-1 installs ago).
func (h *Harness) Use(gen uint32) { h.banks.flip(gen) }

// SetFlags sets and clears bits of hp_config.flags (monitor bits,
// HP_CFG_DIRECT_REDIRECT), as the supervisor does.
func (h *Harness) SetFlags(set, clear uint32) {
	w := h.banks.word(unsafe.Offsetof(abi.Config{}.Flags))
	for {
		old := atomic.LoadUint32(w)
		if atomic.CompareAndSwapUint32(w, old, old&^clear|set) {
			return
		}
	}
}
