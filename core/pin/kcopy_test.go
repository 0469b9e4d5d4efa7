package pin

import (
	"testing"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/lab"
)

// The in-kernel copy loads, copies every entry, and counts the entries a
// full destination refused.
func TestPrivilegedKernelCopy(t *testing.T) {
	lab.Privileged(t)
	src := filled(t, ebpf.LRUHash, 3000)
	dst, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	want, _ := Count(src)
	copied, failed, err := kernelCopy(dst, src)
	if err != nil || failed || copied != want {
		t.Fatalf("in-kernel copy: %d of %d copied, failed %v, %v", copied, want, failed, err)
	}
	if got, _ := Count(dst); got != want {
		t.Fatalf("in-kernel copy wrote %d of %d entries", got, want)
	}
	var v uint64
	if err := dst.Lookup(uint32(7), &v); err != nil || v != 21 {
		t.Errorf("entry 7: %d, %v", v, err)
	}
	small, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	if copied, failed, err := kernelCopy(small, src); err != nil || !failed || copied != 100 {
		t.Errorf("in-kernel copy into 100 entries: %d copied, failed %v, %v; want 100 and a failure", copied, failed, err)
	}
}
