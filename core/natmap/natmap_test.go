package natmap

import (
	"net/netip"
	"testing"

	"github.com/hotpath/hotpath/core/abi"
)

// Both entries of a mapping name the same flow, and the keys built from
// the flow are the ones the datapath writes (bpf/nat.c).
func TestFlowOfBothEntries(t *testing.T) {
	pod := netip.MustParseAddrPort("10.240.1.2:40000")
	remote := netip.MustParseAddrPort("192.0.2.2:80")
	node := netip.MustParseAddrPort("192.0.2.1:45000")
	f := Flow{Pod: Addr4(pod.Addr()), PodPort: Port(pod.Port()), Remote: Addr4(remote.Addr()), RemotePort: Port(remote.Port()), Proto: 6}
	ek := f.EgressKey()
	ik := f.IngressKey(Addr4(node.Addr()), Port(node.Port()))
	if ek.Dir != abi.NATEgress || ik.Dir != abi.NATIngress || AddrPort(ik.Saddr, ik.Sport) != remote || AddrPort(ik.Daddr, ik.Dport) != node {
		t.Fatalf("keys %+v %+v", ek, ik)
	}
	if got := FlowOf(&ek, &abi.NAT4Entry{Addr: Addr4(node.Addr()), Port: Port(node.Port())}); got != f {
		t.Errorf("flow of the egress entry %+v, want %+v", got, f)
	}
	if got := FlowOf(&ik, &abi.NAT4Entry{Addr: f.Pod, Port: f.PodPort}); got != f {
		t.Errorf("flow of the ingress entry %+v, want %+v", got, f)
	}
	if AddrPort(f.Pod, f.PodPort) != pod {
		t.Errorf("AddrPort %s, want %s", AddrPort(f.Pod, f.PodPort), pod)
	}
}
