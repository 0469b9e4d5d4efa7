// Package bare loads the least TCX datapath a forwarded packet can meet
// (bpf/bare.c): one lookup, the MACs, bpf_redirect_peer. Benchmarks set it
// beside plain routing and hotpath to split what any TCX datapath pays for
// the hook and the redirect from what hotpath's stages add.
package bare

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -mcpu=v3 -I/usr/include/x86_64-linux-gnu" -target bpfel -go-package bare -no-global-types bare bpf/bare.c

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Hop is where packets to IP go: into the pod behind the node-side veth
// Ifindex, with the pod's MAC as destination and the veth's as source.
type Hop struct {
	IP      netip.Addr
	Ifindex int
	DstMAC  net.HardwareAddr
	SrcMAC  net.HardwareAddr
}

// Forwarder is the loaded program, its hops and its TCX links.
type Forwarder struct {
	objs  bareObjects
	links []link.Link
}

// Attach loads the forwarder with hops and attaches it at the TCX ingress
// of every device in ifindexes. Call it inside the namespace that holds
// the devices; the links go with the forwarder's Close.
func Attach(hops []Hop, ifindexes []int) (*Forwarder, error) {
	f := &Forwarder{}
	if err := loadBareObjects(&f.objs, nil); err != nil {
		return nil, fmt.Errorf("load bare forwarder: %w", err)
	}
	if err := f.attach(hops, ifindexes); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (f *Forwarder) attach(hops []Hop, ifindexes []int) error {
	for _, h := range hops {
		if err := f.put(h); err != nil {
			return err
		}
	}
	for _, ifindex := range ifindexes {
		l, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: f.objs.BareForward, Attach: ebpf.AttachTCXIngress})
		if err != nil {
			return fmt.Errorf("attach tcx ingress %d: %w", ifindex, err)
		}
		f.links = append(f.links, l)
	}
	return nil
}

// hopValue is struct bare_hop.
type hopValue struct {
	Ifindex uint32
	Dmac    [6]byte
	Smac    [6]byte
}

func (f *Forwarder) put(h Hop) error {
	if !h.IP.Is4() || len(h.DstMAC) != 6 || len(h.SrcMAC) != 6 || h.Ifindex <= 0 {
		return fmt.Errorf("bare hop %v: needs an IPv4 address, two 6-byte MACs and an ifindex", h.IP)
	}
	var v hopValue
	v.Ifindex = uint32(h.Ifindex)
	copy(v.Dmac[:], h.DstMAC)
	copy(v.Smac[:], h.SrcMAC)
	key := h.IP.As4()
	if err := f.objs.BareHops.Put(key, v); err != nil {
		return fmt.Errorf("bare hop %v: %w", h.IP, err)
	}
	return nil
}

// Close detaches and unloads the forwarder.
func (f *Forwarder) Close() error {
	var errs []error
	for _, l := range f.links {
		errs = append(errs, l.Close())
	}
	errs = append(errs, f.objs.Close())
	return errors.Join(errs...)
}
