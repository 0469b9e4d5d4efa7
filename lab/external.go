package lab

import (
	"fmt"
	"net/netip"
	"time"
)

// The external network of Options.External: a namespace "ext" behind the
// node's uplink device, like the world beyond a node's NIC. It knows only
// its own subnet, never a route to the pods, so a reply reaches a pod only
// when the node masquerades the pod's traffic.
//
//	pod a: eth0 10.240.1.2 ─ lxca ┐
//	                              node ─ uplink 192.0.2.1 ═══ eth0 192.0.2.2 :ext
var (
	UplinkIP   = netip.MustParseAddr("192.0.2.1")
	ExternalIP = netip.MustParseAddr("192.0.2.2")
)

// UplinkDevice is the node-side device of the external network.
const UplinkDevice = "uplink"

// addExternal creates the external namespace and wires it to the node.
func (l *Lab) addExternal() error {
	l.mu.Lock()
	ns, err := l.addNS("ext")
	l.mu.Unlock()
	if err != nil {
		return err
	}
	l.External = ns
	err = l.Node.ipBatch(
		fmt.Sprintf("link add %s type veth peer name eth0 netns %s", UplinkDevice, ns.Name),
		fmt.Sprintf("addr add %s/24 dev %s", UplinkIP, UplinkDevice),
	)
	if err != nil {
		return fmt.Errorf("create uplink: %w", err)
	}
	if l.noOffload {
		for _, end := range []struct {
			ns     *NS
			ifname string
		}{{l.Node, UplinkDevice}, {ns, "eth0"}} {
			if _, err := end.ns.Exec("ethtool", "-K", end.ifname, "tso", "off", "gso", "off", "gro", "off"); err != nil {
				return fmt.Errorf("disable offloads on %s: %w", end.ifname, err)
			}
		}
	}
	if err := l.Node.ipBatch(fmt.Sprintf("link set %s up", UplinkDevice)); err != nil {
		return fmt.Errorf("set %s up: %w", UplinkDevice, err)
	}
	// No default route and no route to 10.240.0.0/16: only masqueraded
	// traffic can be answered.
	if err := ns.ipBatch(fmt.Sprintf("addr add %s/24 dev eth0", ExternalIP), "link set eth0 up"); err != nil {
		return fmt.Errorf("configure external eth0: %w", err)
	}
	if err := l.Node.waitUp(UplinkDevice, 5*time.Second); err != nil {
		return err
	}
	return ns.waitUp("eth0", 5*time.Second)
}
