package bench

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/plugins/lb"
	"github.com/hotpath/hotpath/supervisor"
	"github.com/hotpath/hotpath/supervisor/pipeline"
)

// dpHarness is internal/dptest's Harness without the testing package
// (plugintest.New needs a testing.TB): a private bpffs, the real shared maps,
// the real entry programs and generations installed through the real
// pipeline code.
type dpHarness struct {
	dir    string
	layout pin.Layout
	maps   *supervisor.Maps
	pipe   *pipeline.Pipeline
	entry  *supervisor.Entry
	gen    uint32

	untrack func()
}

func newDPHarness() (h *dpHarness, err error) {
	dir, err := os.MkdirTemp("", "hotpath-bench-bpffs-")
	if err != nil {
		return nil, err
	}
	h = &dpHarness{dir: dir, layout: pin.Layout{Root: dir}}
	h.untrack = track(h.unmount)
	defer func() {
		if err != nil {
			h.close()
			h = nil
		}
	}()
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		return h, fmt.Errorf("mount bpffs at %s: %w", dir, err)
	}
	if h.maps, err = supervisor.OpenMaps(h.layout); err != nil {
		return h, err
	}
	if h.pipe, err = pipeline.Open(h.maps.ByName[abi.MapCalls], h.maps.ByName[abi.MapConfig]); err != nil {
		return h, err
	}
	if h.entry, err = supervisor.LoadEntry(h.maps.ByName); err != nil {
		return h, err
	}
	return h, nil
}

// lbHooks are the hooks the lb plugin declares for its slots, as the
// supervisor would install them: lb stages at ingress, lb-revnat at egress.
func lbHooks() map[abi.Slot]pipeline.Hooks {
	out := map[abi.Slot]pipeline.Hooks{}
	for name, hooks := range lb.DefaultConfig().Hooks() {
		slot, err := abi.ParseSlot(name)
		if err != nil {
			continue
		}
		h, err := pipeline.ParseHooks(hooks)
		if err == nil {
			out[slot] = h
		}
	}
	return out
}

// install makes progs the next generation and flips to it, with the hooks
// the plugins declare (a slot not from lb runs at both).
func (h *dpHarness) install(progs map[abi.Slot]*ebpf.Program) (uint32, error) {
	if err := h.pipe.Settle(); err != nil {
		return 0, err
	}
	h.gen++
	if err := h.pipe.PrepareHooks(h.gen, progs, lbHooks()); err != nil {
		return 0, err
	}
	h.pipe.Flip(h.gen)
	return h.gen, nil
}

// use flips back to an installed generation. Only this process runs
// packets through the harness and test runs are synchronous, so no packet
// can be in flight during the flip and no grace period is needed.
func (h *dpHarness) use(gen uint32) { h.pipe.Flip(gen) }

// bench runs pkt through the ingress entry program repeat times in one
// BPF_PROG_TEST_RUN and returns the kernel's mean time per run, which
// excludes the syscall and the skb setup.
func (h *dpHarness) bench(pkt []byte, repeat int) (time.Duration, error) {
	return benchProg(h.entry.Ingress, pkt, repeat)
}

// runner is one way into a datapath (the pipeline's ingress or egress
// entry, a monolithic program): h.bench or on(prog).
type runner func(pkt []byte, repeat int) (time.Duration, error)

// on is the runner of any tc program.
func on(prog *ebpf.Program) runner {
	return func(pkt []byte, repeat int) (time.Duration, error) { return benchProg(prog, pkt, repeat) }
}

func benchProg(prog *ebpf.Program, pkt []byte, repeat int) (time.Duration, error) {
	ret, d, err := prog.Benchmark(pkt, repeat, nil)
	if err != nil {
		return 0, err
	}
	if ret != 0 { // TC_ACT_OK: every benchmarked packet must pass
		return 0, fmt.Errorf("verdict %d, want 0 (pass)", ret)
	}
	return d, nil
}

// clearMap deletes every entry of m (between runs of new-flow rows).
func clearMap(m *ebpf.Map) error {
	keys := make([]abi.CTTuple, 4096)
	vals := make([]abi.CTEntry, 4096)
	for {
		var cur ebpf.MapBatchCursor
		n, err := m.BatchLookup(&cur, keys, vals, nil)
		if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("clear map: %w", err)
		}
		if n == 0 {
			return nil
		}
		for i := range n {
			if err := m.Delete(&keys[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("clear map: %w", err)
			}
		}
	}
}

func (h *dpHarness) close() {
	if h.entry != nil {
		h.entry.Close()
	}
	if h.pipe != nil {
		h.pipe.Close()
	}
	if h.maps != nil {
		h.maps.Close()
	}
	h.unmount()
	h.untrack()
}

// unmount drops the private bpffs and with it every pinned object.
func (h *dpHarness) unmount() {
	unix.Unmount(h.dir, unix.MNT_DETACH) // fails harmlessly if never mounted
	os.Remove(h.dir)
}
