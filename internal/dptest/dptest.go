// Package dptest runs pipeline stages on crafted packets with
// BPF_PROG_TEST_RUN: a private bpffs, the real shared maps, the real entry
// programs, and whatever stages a test installs into a generation.
package dptest

import (
	"fmt"
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/supervisor"
	"github.com/hotpath/hotpath/supervisor/pipeline"
)

// Harness is one private datapath without devices.
type Harness struct {
	Layout pin.Layout
	Maps   *supervisor.Maps
	Pipe   *pipeline.Pipeline
	Entry  *supervisor.Entry
	gen    uint32
}

// New mounts a private bpffs, creates the shared maps and loads the entry
// programs. Everything is released when the test ends.
func New(t testing.TB) *Harness {
	t.Helper()
	lab.Privileged(t)
	dir := t.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, ""); err != nil {
		t.Fatalf("mount bpffs at %s: %v", dir, err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	h := &Harness{Layout: pin.Layout{Root: dir}}
	var err error
	if h.Maps, err = supervisor.OpenMaps(h.Layout); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Maps.Close)
	if h.Pipe, err = pipeline.Open(h.Maps.ByName[abi.MapCalls], h.Maps.ByName[abi.MapConfig]); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Pipe.Close() })
	if h.Entry, err = supervisor.LoadEntry(h.Maps.ByName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Entry.Close)
	return h
}

// Install makes progs the next generation and flips to it.
func (h *Harness) Install(t testing.TB, progs map[abi.Slot]*ebpf.Program) uint32 {
	t.Helper()
	if err := h.Pipe.Settle(); err != nil {
		t.Fatal(err)
	}
	h.gen++
	if err := h.Pipe.Prepare(h.gen, progs); err != nil {
		t.Fatal(err)
	}
	h.Pipe.Flip(h.gen)
	return h.gen
}

// Gen is the generation Install made live last.
func (h *Harness) Gen() uint32 { return h.gen }

// Result is what one run of the pipeline returned.
type Result struct {
	Code   uint32 // tc return code: 0 ok, 2 shot, 7 redirect
	Packet []byte // the packet as the pipeline left it
}

// Run sends pkt through the entry program of direction dir.
func (h *Harness) Run(dir abi.AbiHpDir, pkt []byte) (Result, error) {
	prog := h.Entry.Ingress
	if dir == abi.AbiHpDirHP_DIR_EGRESS {
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

// Metric sums the per-CPU counter of (reason, dir).
func (h *Harness) Metric(t testing.TB, r abi.Reason, dir abi.AbiHpDir) abi.Metric {
	t.Helper()
	var per []abi.Metric
	if err := h.Maps.ByName[abi.MapMetrics].Lookup(abi.MetricKey(r, uint32(dir)), &per); err != nil {
		t.Fatalf("read metric %s: %v", abi.ReasonName(r), err)
	}
	var sum abi.Metric
	for _, m := range per {
		sum.Packets += m.Packets
		sum.Bytes += m.Bytes
	}
	return sum
}

// Dump returns every entry of a CT map.
func (h *Harness) Dump(t testing.TB, name string) map[abi.CTTuple]abi.CTEntry {
	t.Helper()
	out := map[abi.CTTuple]abi.CTEntry{}
	var k abi.CTTuple
	var v abi.CTEntry
	it := h.Maps.ByName[name].Iterate()
	for it.Next(&k, &v) {
		out[k] = v
	}
	if err := it.Err(); err != nil {
		t.Fatalf("dump %s: %v", name, err)
	}
	return out
}

// Exists reports whether path exists (for pin assertions).
func Exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// AttachLab attaches the harness's entry programs to every pod device of l,
// from inside its node namespace, so real traffic runs the generation the
// test installs. The links go away with the test.
func (h *Harness) AttachLab(t testing.TB, l *lab.Lab) {
	t.Helper()
	var links []link.Link
	err := l.Node.Do(func() error {
		for _, p := range l.Pods {
			ls, err := h.Entry.Attach(h.Layout.Link, p.HostIf)
			if err != nil {
				return err
			}
			links = append(links, ls...)
		}
		return nil
	})
	t.Cleanup(func() {
		for _, k := range links {
			k.Close()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}
