package policy

import (
	"net/netip"
	"slices"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// This file is the tests' own reading of NetworkPolicy semantics, written
// from the Kubernetes documentation without any of the plugin's code: the
// expected result of every probe is computed here, never written by hand.

// expect: a packet passes when the source's egress and the destination's
// ingress both allow it.
func expect(nps []networkingv1.NetworkPolicy, p probe) bool {
	return allows(nps, p.src, p.dst, "Egress", p.proto, p.port) &&
		allows(nps, p.dst, p.src, "Ingress", p.proto, p.port)
}

// allows: a pod no policy selects for dir is open; a selected pod accepts
// what at least one rule of one selecting policy allows.
func allows(nps []networkingv1.NetworkPolicy, subject, peer *pod, dir, proto string, port int) bool {
	selected := false
	for _, np := range nps {
		if np.Namespace != subject.ns || !selects(&np.Spec.PodSelector, subject.labels) || !hasType(np, dir) {
			continue
		}
		selected = true
		if dir == "Ingress" {
			for _, r := range np.Spec.Ingress {
				if peersMatch(r.From, np.Namespace, peer) && portsMatch(r.Ports, proto, port) {
					return true
				}
			}
		} else {
			for _, r := range np.Spec.Egress {
				if peersMatch(r.To, np.Namespace, peer) && portsMatch(r.Ports, proto, port) {
					return true
				}
			}
		}
	}
	return !selected
}

func hasType(np networkingv1.NetworkPolicy, dir string) bool {
	if len(np.Spec.PolicyTypes) == 0 {
		return dir == "Ingress" || len(np.Spec.Egress) > 0
	}
	for _, t := range np.Spec.PolicyTypes {
		if string(t) == dir {
			return true
		}
	}
	return false
}

func peersMatch(peers []networkingv1.NetworkPolicyPeer, ns string, peer *pod) bool {
	if len(peers) == 0 {
		return true
	}
	for _, p := range peers {
		if p.IPBlock != nil {
			if inCIDR(p.IPBlock.CIDR, peer.ip) && !slices.ContainsFunc(p.IPBlock.Except, func(e string) bool { return inCIDR(e, peer.ip) }) {
				return true
			}
			continue
		}
		nsOK := peer.ns == ns
		if p.NamespaceSelector != nil {
			nsOK = selects(p.NamespaceSelector, map[string]string{"kubernetes.io/metadata.name": peer.ns})
		}
		podOK := p.PodSelector == nil || selects(p.PodSelector, peer.labels)
		if nsOK && podOK {
			return true
		}
	}
	return false
}

func inCIDR(cidr string, a netip.Addr) bool {
	p, err := netip.ParsePrefix(cidr)
	return err == nil && p.Masked().Contains(a)
}

func portsMatch(ports []networkingv1.NetworkPolicyPort, proto string, port int) bool {
	if len(ports) == 0 {
		return true
	}
	for _, pp := range ports {
		want := "tcp"
		if pp.Protocol != nil {
			want = strings.ToLower(string(*pp.Protocol))
		}
		if want != proto {
			continue
		}
		if pp.Port == nil {
			return true
		}
		hi := int(pp.Port.IntVal)
		if pp.EndPort != nil {
			hi = int(*pp.EndPort)
		}
		if port >= int(pp.Port.IntVal) && port <= hi {
			return true
		}
	}
	return false
}

// selects evaluates a label selector: every matchLabels pair and every
// expression must hold; an empty selector selects everything.
func selects(s *metav1.LabelSelector, l map[string]string) bool {
	for k, v := range s.MatchLabels {
		if got, ok := l[k]; !ok || got != v {
			return false
		}
	}
	for _, e := range s.MatchExpressions {
		v, has := l[e.Key]
		switch e.Operator {
		case metav1.LabelSelectorOpIn:
			if !has || !slices.Contains(e.Values, v) {
				return false
			}
		case metav1.LabelSelectorOpNotIn:
			if has && slices.Contains(e.Values, v) {
				return false
			}
		case metav1.LabelSelectorOpExists:
			if !has {
				return false
			}
		case metav1.LabelSelectorOpDoesNotExist:
			if has {
				return false
			}
		default:
			return false
		}
	}
	return true
}
