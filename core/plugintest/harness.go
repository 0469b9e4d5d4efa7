// Package plugintest is what a plugin's tests use to run its stages on
// crafted packets with BPF_PROG_TEST_RUN: a private bpffs, the shared maps
// created from the SDK's specs, the real entry program, and generations the
// test fills with its stage programs. AttachLab puts the same entry program
// on a lab's devices so real traffic runs the test's generation.
//
// It is test support: it imports testing and the lab, and never belongs in a
// plugin's or the supervisor's binary.
package plugintest

import (
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/hotpath/hotpath/core/entry"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/lab"
)

// Harness is one private datapath without devices: what the supervisor would
// hold, reduced to what a stage test needs.
type Harness struct {
	Layout pin.Layout
	Maps   map[string]*ebpf.Map // every shared map, by name
	Entry  *entry.Programs
	banks  *banks
}

// New mounts a private bpffs, creates the shared maps under it and loads the
// entry programs. Everything is released when the test ends. It needs root:
// without, the test skips (and fails under CI=true), as every privileged test.
func New(t testing.TB) *Harness {
	t.Helper()
	lab.Privileged(t)
	dir := t.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		t.Fatalf("mount bpffs at %s: %v", dir, err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	h := &Harness{Layout: pin.Layout{Root: dir}}
	var err error
	if h.Maps, _, err = pin.OpenAllShared(h.Layout, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pin.CloseAll(h.Maps) })
	if h.banks, err = openBanks(h.Maps); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.banks.close)
	if h.Entry, err = entry.Load(h.Maps); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Entry.Close)
	return h
}
