// Package entry is the pipeline's entry program (bpf/entry.c), its loader
// and its TCX attachment. The supervisor attaches it to the node's devices;
// plugintest runs it with BPF_PROG_TEST_RUN and attaches it to a lab's
// devices. One implementation serves both, so a plugin's tests run the same
// entry program as production.
package entry

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Directions of the TCX hooks, as named in pin paths and metrics.
const (
	DirIngress = "ingress"
	DirEgress  = "egress"
)

// Programs are the loaded entry programs.
type Programs struct {
	Ingress *ebpf.Program
	Egress  *ebpf.Program
}

// Load loads the entry programs against the shared maps.
func Load(maps map[string]*ebpf.Map) (*Programs, error) {
	spec, err := loadEntry()
	if err != nil {
		return nil, fmt.Errorf("load entry spec: %w", err)
	}
	var objs entryObjects
	if err := spec.LoadAndAssign(&objs, &ebpf.CollectionOptions{MapReplacements: maps}); err != nil {
		return nil, fmt.Errorf("load entry programs: %w", err)
	}
	return &Programs{Ingress: objs.HpEntryIngress, Egress: objs.HpEntryEgress}, nil
}

// Close releases the programs; attached links keep them alive.
func (e *Programs) Close() {
	e.Ingress.Close()
	e.Egress.Close()
}

// Attach attaches (or re-adopts) the entry programs on ifname in both
// directions and pins the links. A pinned link is kept and updated in place to
// the given program, so traffic never sees a detached device.
func (e *Programs) Attach(linkDir func(ifname, dir string) string, ifname string) ([]link.Link, error) {
	iface, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("attach tcx %s: %w", ifname, err)
	}
	var out []link.Link
	for _, h := range []struct {
		dir  string
		prog *ebpf.Program
		at   ebpf.AttachType
	}{{DirIngress, e.Ingress, ebpf.AttachTCXIngress}, {DirEgress, e.Egress, ebpf.AttachTCXEgress}} {
		l, err := attachOne(linkDir(ifname, h.dir), iface.Index, h.prog, h.at)
		if err != nil {
			CloseLinks(out)
			return nil, fmt.Errorf("attach tcx %s %s: %w", ifname, h.dir, err)
		}
		out = append(out, l)
	}
	return out, nil
}

func attachOne(path string, ifindex int, prog *ebpf.Program, at ebpf.AttachType) (link.Link, error) {
	l, err := link.LoadPinnedLink(path, nil)
	if err == nil {
		if err := sameDevice(l, ifindex); err != nil {
			l.Close()
			return nil, err
		}
		if err := l.Update(prog); err != nil {
			l.Close()
			return nil, fmt.Errorf("update pinned link %s: %w", path, err)
		}
		return l, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open pinned link %s: %w", path, err)
	}
	l, err = link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: prog, Attach: at})
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		l.Close()
		return nil, err
	}
	if err := l.Pin(path); err != nil {
		l.Close()
		return nil, fmt.Errorf("pin link %s: %w", path, err)
	}
	return l, nil
}

// sameDevice refuses a pinned link that belongs to another device (an
// interface re-created under the same name gets a new index).
func sameDevice(l link.Link, ifindex int) error {
	info, err := l.Info()
	if err != nil {
		return fmt.Errorf("link info: %w", err)
	}
	tcx := info.TCX()
	if tcx == nil {
		return fmt.Errorf("pinned link is not a tcx link")
	}
	if int(tcx.Ifindex) != ifindex {
		return fmt.Errorf("pinned link is on ifindex %d, device now has %d", tcx.Ifindex, ifindex)
	}
	return nil
}

// CloseLinks closes every link of ls (the pins keep attached links alive).
func CloseLinks(ls []link.Link) {
	for _, l := range ls {
		l.Close()
	}
}
