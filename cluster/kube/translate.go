// Package kube takes a node's desired state from the Kubernetes API, the
// way kube-proxy and Cilium do: Services of type ClusterIP (with ClientIP
// session affinity) over the ready endpoints of their EndpointSlices,
// NetworkPolicies, the Pods of this node as policy endpoints, and Nodes as
// tunnel routes. It programs the node through package cluster's Programmer,
// the same plugin commands the etcd source and the CLI send.
package kube

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/hotpath/hotpath/cluster"
	"github.com/hotpath/hotpath/core/netpol"
	"github.com/hotpath/hotpath/core/services"
)

// defaultAffinity is Kubernetes' default ClientIP affinity timeout (3 h).
const defaultAffinity = 10800

// Services turns one Service and its EndpointSlices into lb services, one
// per TCP or UDP port of its IPv4 cluster IP, keyed by VIP. NodePort and
// LoadBalancer services have a cluster IP too and get it; ExternalName and
// headless services have none. Only ready, not terminating
// endpoints become backends, so a terminating pod gets no new connection.
func Services(svc *corev1.Service, slices []*discoveryv1.EndpointSlice) map[string]services.ServiceAddArgs {
	out := map[string]services.ServiceAddArgs{}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return out
	}
	ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil || !ip.Is4() {
		return out
	}
	var affinity int64
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		affinity = defaultAffinity
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			affinity = int64(*c.ClientIP.TimeoutSeconds)
		}
	}
	for _, p := range svc.Spec.Ports {
		proto := "tcp"
		switch p.Protocol {
		case corev1.ProtocolUDP:
			proto = "udp"
		case corev1.ProtocolTCP, "":
		default:
			continue
		}
		vip, err := services.ParseVIP(netip.AddrPortFrom(ip, uint16(p.Port)).String() + "/" + proto)
		if err != nil {
			continue
		}
		a := services.ServiceAddArgs{VIP: vip.String(), AffinityTimeoutSeconds: affinity, Backends: []services.BackendArg{}}
		seen := map[string]bool{}
		for _, es := range slices {
			if es.AddressType != discoveryv1.AddressTypeIPv4 {
				continue
			}
			port := slicePort(es, p)
			if port == 0 {
				continue
			}
			for _, ep := range es.Endpoints {
				if !serving(ep) {
					continue
				}
				for _, addr := range ep.Addresses {
					ip, err := netip.ParseAddr(addr)
					if err != nil {
						continue
					}
					b := services.BackendArg{Address: netip.AddrPortFrom(ip, port).String()}
					if _, err := b.Parse(); err != nil || seen[b.Address] {
						continue
					}
					seen[b.Address] = true
					a.Backends = append(a.Backends, b)
				}
			}
		}
		if _, err := a.Spec(); err == nil {
			out[a.VIP] = a
		}
	}
	return out
}

// serving is kube-proxy's rule for new connections: ready (an unset
// condition counts as ready) and not terminating.
func serving(ep discoveryv1.Endpoint) bool {
	c := ep.Conditions
	if c.Terminating != nil && *c.Terminating {
		return false
	}
	return c.Ready == nil || *c.Ready
}

// slicePort is the endpoint port of a slice for service port p, matched by
// name as the EndpointSlice controller writes them.
func slicePort(es *discoveryv1.EndpointSlice, p corev1.ServicePort) uint16 {
	if p.Protocol == "" {
		p.Protocol = corev1.ProtocolTCP
	}
	for _, sp := range es.Ports {
		name := ""
		if sp.Name != nil {
			name = *sp.Name
		}
		proto := corev1.ProtocolTCP
		if sp.Protocol != nil {
			proto = *sp.Protocol
		}
		if name == p.Name && proto == p.Protocol && sp.Port != nil && *sp.Port > 0 && *sp.Port < 65536 {
			return uint16(*sp.Port)
		}
	}
	return 0
}

// Endpoint is a running pod of this node with an IPv4 address.
func Endpoint(pod *corev1.Pod, node string) (netpol.Endpoint, bool) {
	if pod.Spec.NodeName != node || pod.Spec.HostNetwork || pod.Status.PodIP == "" {
		return netpol.Endpoint{}, false
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return netpol.Endpoint{}, false
	}
	e := netpol.Endpoint{IP: pod.Status.PodIP, Namespace: pod.Namespace, Labels: pod.Labels}
	if e.Labels == nil {
		e.Labels = map[string]string{}
	}
	if e.Validate() != nil {
		return netpol.Endpoint{}, false
	}
	return e, true
}

// Node is a cluster node: its InternalIP and pod CIDR.
func Node(n *corev1.Node) cluster.Node {
	out := cluster.Node{Name: n.Name, PodCIDR: n.Spec.PodCIDR}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() {
				out.IP = ip.String()
				break
			}
		}
	}
	return out
}
