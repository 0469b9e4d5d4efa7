package pin_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/lab"
)

// TestPrivilegedOpenIfPinned: nothing pinned is nil without an error and
// creates nothing; a pinned map of the spec opens (read-only when asked);
// one that differs from the spec is refused by name.
func TestPrivilegedOpenIfPinned(t *testing.T) {
	lab.Privileged(t)
	l := lab.NewT(t, lab.Options{MountBPFFS: true})
	spec := &ebpf.MapSpec{Name: "probe", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 4}
	path := filepath.Join(l.BPFFS, "probe")

	m, err := pin.OpenIfPinned(spec, path, nil)
	if err != nil || m != nil {
		t.Fatalf("nothing pinned: %v, %v; want nil, nil", m, err)
	}
	if _, err := ebpf.LoadPinnedMap(path, nil); err == nil {
		t.Fatal("opening an absent pin created one")
	}

	made, created, err := pin.OpenOrCreate(spec, path)
	if err != nil || !created {
		t.Fatalf("create: created %v, %v", created, err)
	}
	defer made.Close()
	ro, err := pin.OpenIfPinned(spec, path, &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil || ro == nil {
		t.Fatalf("pinned: %v, %v", ro, err)
	}
	defer ro.Close()
	if err := ro.Put(uint32(0), uint64(1)); err == nil {
		t.Error("a read-only descriptor accepted a write")
	}

	other := spec.Copy()
	other.ValueSize = 16
	if m, err := pin.OpenIfPinned(other, path, nil); err == nil || !strings.Contains(err.Error(), "open map probe at "+path) {
		if m != nil {
			m.Close()
		}
		t.Fatalf("a pinned map unlike the spec: %v, want an error naming it", err)
	}
}
