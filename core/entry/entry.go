// Package entry is the pipeline's entry program (bpf/entry.c), its loader
// and its TCX attachment. The supervisor attaches it to the node's devices;
// plugintest runs it with BPF_PROG_TEST_RUN and attaches it to a lab's
// devices. One implementation serves both, so a plugin's tests run the same
// entry program as production.
package entry

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/hotpath/hotpath/core/pin"
)

// Directions of the TCX hooks, as named in pin paths and metrics.
const (
	DirIngress = "ingress"
	DirEgress  = "egress"
)

// Programs are the loaded entry programs and the forward stage.
type Programs struct {
	Ingress *ebpf.Program
	Egress  *ebpf.Program
	// Forward is the stage of the forward slot: it marks what goes on
	// through the node (the egress hook then skips it) and redirects
	// where the next hop is known. See bpf/entry.c.
	Forward *ebpf.Program
	// Devices (ifindex -> Kind*) are the redirect targets; Stats the
	// forward stage's per-CPU counters (StatNames).
	Devices *ebpf.Map
	Stats   *ebpf.Map
	// RouteMTU (LPM prefix -> MTU) and MinMTU (its smallest, 0: none)
	// mirror the routes with an MTU of their own, which the forward stage
	// must honour and bpf_fib_lookup does not check.
	RouteMTU *ebpf.Map
	MinMTU   *ebpf.Map
	// Hops remembers next hops the forward stage found in the FIB; Route
	// holds the epoch that keeps them good (see ForgetHops) and whether
	// they are used at all (SetHopsOff).
	Hops  *ebpf.Map
	Route *ebpf.Map
}

// Kinds of device in Programs.Devices (enum fwd_kind of bpf/entry.c).
const (
	KindPeer  uint32 = 1 // veth with its peer in another namespace: bpf_redirect_peer
	KindNeigh uint32 = 2 // any other device: bpf_redirect_neigh
)

// StatNames name the forward stage's counters by index (enum fwd_stat of
// bpf/entry.c, in order).
var StatNames = []string{
	"peer", "neigh", "not_forwarded", "stage", "turned", "off", "no_route",
	"no_neigh", "frag_needed", "ttl", "unmanaged", "egress_seen",
}

// Load loads the entry programs against the shared maps.
func Load(maps map[string]*ebpf.Map) (*Programs, error) { return LoadPinned(maps, "") }

// LoadPinned is Load with the forward stage's own maps pinned in dir (kept
// when they exist), so a restarted supervisor keeps their content and
// counters. An empty dir pins nothing.
func LoadPinned(maps map[string]*ebpf.Map, dir string) (*Programs, error) {
	spec, err := loadEntry()
	if err != nil {
		return nil, fmt.Errorf("load entry spec: %w", err)
	}
	var objs entryObjects
	pin.Fit(spec, maps) // shared maps the supervisor sized from its config
	opts := &ebpf.CollectionOptions{MapReplacements: maps}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
		for _, name := range []string{entryMapFwdDevs, entryMapFwdStats, entryMapFwdMtu, entryMapFwdMinMtu, entryMapFwdHops, entryMapFwdRoute} {
			spec.Maps[name].Pinning = ebpf.PinByName
		}
		opts.Maps.PinPath = dir
	}
	if err := spec.LoadAndAssign(&objs, opts); err != nil {
		return nil, fmt.Errorf("load entry programs: %w", err)
	}
	// The per-CPU clock cache (bpf/lib/entry.h) is the programs' alone: a
	// fresh one per load is as good as any, and they keep it alive.
	objs.HpClock.Close()
	return &Programs{
		Ingress: objs.HpEntryIngress, Egress: objs.HpEntryEgress, Forward: objs.HpForward,
		Devices: objs.FwdDevs, Stats: objs.FwdStats, RouteMTU: objs.FwdMtu, MinMTU: objs.FwdMinMtu,
		Hops: objs.FwdHops, Route: objs.FwdRoute,
	}, nil
}

// Close releases the programs; attached links and prog arrays keep them alive.
func (e *Programs) Close() {
	e.Ingress.Close()
	e.Egress.Close()
	e.Forward.Close()
	e.Devices.Close()
	e.Stats.Close()
	e.RouteMTU.Close()
	e.MinMTU.Close()
	e.Hops.Close()
	e.Route.Close()
}

// SetRouteMTUs makes mtus (IPv4 prefix -> MTU) the routes the forward stage
// checks, removing every other.
func (e *Programs) SetRouteMTUs(mtus map[netip.Prefix]uint32) error {
	type key struct{ Prefixlen, Addr uint32 }
	toKey := func(p netip.Prefix) key {
		a := p.Masked().Addr().As4()
		return key{uint32(p.Bits()), binary.NativeEndian.Uint32(a[:])}
	}
	want := map[key]uint32{}
	var min uint32
	for p, mtu := range mtus {
		if !p.Addr().Is4() || mtu == 0 {
			continue
		}
		want[toKey(p)] = mtu
		if min == 0 || mtu < min {
			min = mtu
		}
	}
	// The smallest MTU first goes down (a new route is checked at once),
	// and goes up only once the trie holds no smaller one.
	var cur uint32
	if err := e.MinMTU.Lookup(uint32(0), &cur); err != nil {
		return fmt.Errorf("read route mtu floor: %w", err)
	}
	if min != 0 && (cur == 0 || min < cur) {
		if err := e.MinMTU.Put(uint32(0), min); err != nil {
			return fmt.Errorf("set route mtu floor: %w", err)
		}
	}
	for k, v := range want {
		if err := e.RouteMTU.Put(k, v); err != nil {
			return fmt.Errorf("set route mtu: %w", err)
		}
	}
	var k key
	var stale []key
	it := e.RouteMTU.Iterate()
	var v uint32
	for it.Next(&k, &v) {
		if _, ok := want[k]; !ok {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("list route mtus: %w", err)
	}
	for _, k := range stale {
		if err := e.RouteMTU.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("remove route mtu: %w", err)
		}
	}
	if err := e.MinMTU.Put(uint32(0), min); err != nil {
		return fmt.Errorf("set route mtu floor: %w", err)
	}
	// Remembered hops carry the MTU they were found with.
	return e.ForgetHops()
}

// SetDevices makes kinds (ifindex -> Kind*) the redirect targets, removing
// every other (a device a previous supervisor knew, whose index a new device
// may reuse).
func (e *Programs) SetDevices(kinds map[int]uint32) error {
	for idx, kind := range kinds {
		if err := e.SetDevice(idx, kind); err != nil {
			return err
		}
	}
	var idx, kind uint32
	var stale []int
	it := e.Devices.Iterate()
	for it.Next(&idx, &kind) {
		if kinds[int(idx)] == 0 {
			stale = append(stale, int(idx))
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("list devices: %w", err)
	}
	for _, i := range stale {
		if err := e.SetDevice(i, 0); err != nil {
			return err
		}
	}
	return nil
}

// SetDevice makes ifindex a redirect target of the given kind (0 removes it).
func (e *Programs) SetDevice(ifindex int, kind uint32) error {
	if kind == 0 {
		if err := e.Devices.Delete(uint32(ifindex)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("forget device %d: %w", ifindex, err)
		}
		return e.ForgetHops()
	}
	if err := e.Devices.Put(uint32(ifindex), kind); err != nil {
		return fmt.Errorf("set device %d: %w", ifindex, err)
	}
	// A remembered hop carries its device's kind.
	return e.ForgetHops()
}

// ForwardStats sums the forward stage's counters over CPUs, by name.
func (e *Programs) ForwardStats() (map[string]uint64, error) {
	return ReadStats(e.Stats)
}

// ReadStats sums a fwd_stats map (e.g. opened from its pin) over CPUs.
func ReadStats(m *ebpf.Map) (map[string]uint64, error) {
	out := make(map[string]uint64, len(StatNames))
	for i, name := range StatNames {
		var per []uint64
		if err := m.Lookup(uint32(i), &per); err != nil {
			return nil, fmt.Errorf("read forward stat %s: %w", name, err)
		}
		var sum uint64
		for _, v := range per {
			sum += v
		}
		out[name] = sum
	}
	return out, nil
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
