package bare

import (
	"fmt"
	"net"
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
		podMAC, err := macIn(p.NS, "eth0")
		if err != nil {
			return nil, err
		}
		var host netlink.Link
		err = l.Node.Do(func() (err error) {
			host, err = netlink.LinkByName(p.HostIf)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("pod %s: node-side veth %s: %w", name, p.HostIf, err)
		}
		a := host.Attrs()
		hops = append(hops, Hop{IP: p.IP, Ifindex: a.Index, DstMAC: podMAC, SrcMAC: a.HardwareAddr})
		devs = append(devs, a.Index)
	}
	var f *Forwarder
	err := l.Node.Do(func() (err error) {
		f, err = Attach(hops, devs)
		return err
	})
	return f, err
}

// macIn is the MAC of device ifname in ns.
func macIn(ns *lab.NS, ifname string) (mac net.HardwareAddr, err error) {
	err = ns.Do(func() error {
		l, err := netlink.LinkByName(ifname)
		if err != nil {
			return err
		}
		mac = l.Attrs().HardwareAddr
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s in %s: %w", ifname, ns.Name, err)
	}
	return mac, nil
}
