// Package dptest is core/plugintest's harness driven by the supervisor's own
// pipeline package, for tests of supervisor machinery (generation banks,
// grace periods, flips under traffic). Plugin tests use core/plugintest.
package dptest

import (
	"testing"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/core/plugintest"
	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/supervisor"
	"github.com/hotpath/hotpath/supervisor/pipeline"
)

// Harness is one private datapath without devices, generations written by
// the supervisor's pipeline.
type Harness struct {
	Layout pin.Layout
	Maps   *supervisor.Maps
	Pipe   *pipeline.Pipeline
	Entry  *supervisor.Entry
	sdk    *plugintest.Harness
	gen    uint32
}

// Result is what one run of the pipeline returned.
type Result = plugintest.Result

// New mounts a private bpffs, creates the shared maps, loads the entry
// programs and opens the pipeline over them. Everything is released when
// the test ends.
func New(t testing.TB) *Harness {
	t.Helper()
	sdk := plugintest.New(t)
	pipe, err := pipeline.Open(sdk.Maps[abi.MapCalls], sdk.Maps[abi.MapConfig])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pipe.Close() })
	return &Harness{Layout: sdk.Layout, Maps: &supervisor.Maps{ByName: sdk.Maps}, Pipe: pipe, Entry: sdk.Entry, sdk: sdk}
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

// Run sends pkt through the entry program of direction dir.
func (h *Harness) Run(dir abi.AbiHpDir, pkt []byte) (Result, error) { return h.sdk.Run(dir, pkt) }

// Metric sums the per-CPU counter of (reason, dir).
func (h *Harness) Metric(t testing.TB, r abi.Reason, dir abi.AbiHpDir) abi.Metric {
	t.Helper()
	return h.sdk.Metric(t, r, dir)
}

// Dump returns every entry of a CT map.
func (h *Harness) Dump(t testing.TB, name string) map[abi.CTTuple]abi.CTEntry {
	t.Helper()
	return h.sdk.Dump(t, name)
}

// AttachLab attaches the entry programs to every pod device of l.
func (h *Harness) AttachLab(t testing.TB, l *lab.Lab) {
	t.Helper()
	h.sdk.AttachLab(t, l)
}
