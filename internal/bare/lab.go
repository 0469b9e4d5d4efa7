package bare

import (
	"fmt"
	"sort"

	"github.com/vishvananda/netlink"

	"github.com/hotpath/hotpath/lab"
)

// ForLab attaches a forwarder in l's node namespace at the ingress of every
// pod's node-side veth, with a hop to each pod: packets between pods go
// straight from one veth into the other pod.
func ForLab(l *lab.Lab) (*Forwarder, error) {
	names := make([]string, 0, len(l.Pods))
	for name := range l.Pods {
		names = append(names, name)
	}
	sort.Strings(names)
	var hops []Hop
	var devs []int
	for _, name := range names {
		p := l.Pods[name]
		pod, err := linkIn(p.NS, "eth0")
		if err != nil {
			return nil, err
		}
		host, err := linkIn(l.Node, p.HostIf)
		if err != nil {
			return nil, err
		}
		hops = append(hops, Hop{IP: p.IP, Ifindex: host.Index, DstMAC: pod.HardwareAddr, SrcMAC: host.HardwareAddr})
		devs = append(devs, host.Index)
	}
	var f *Forwarder
	err := l.Node.Do(func() (err error) {
		f, err = Attach(hops, devs)
		return err
	})
	return f, err
}

// linkIn is the attributes of device ifname in ns.
func linkIn(ns *lab.NS, ifname string) (*netlink.LinkAttrs, error) {
	var a *netlink.LinkAttrs
	err := ns.Do(func() error {
		l, err := netlink.LinkByName(ifname)
		if err != nil {
			return err
		}
		a = l.Attrs()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s in %s: %w", ifname, ns.Name, err)
	}
	return a, nil
}
