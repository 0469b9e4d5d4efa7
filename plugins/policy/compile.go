package policy

import (
	"math/bits"
	"net/netip"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/netpol"
)

// Rules is a compiled rule table: the content of one inner policy map.
type Rules map[abi.AbiHpPolicyKey]abi.AbiHpPolicyVal

// LPM prefix lengths of a policy key's data (abi.h, struct hp_policy_key).
const (
	bitsPeerDir = 72 // local, peer, dir: every protocol and port
	bitsProto   = 80 // + protocol: every port
)

// identity is one label identity with what selectors match it against.
type identity struct {
	id        uint32
	namespace string
	labels    labels.Set
}

func identities(s *State) []identity {
	seen := map[uint32]bool{}
	var out []identity
	for _, e := range s.Endpoints {
		if seen[e.Identity] {
			continue
		}
		seen[e.Identity] = true
		out = append(out, identity{id: e.Identity, namespace: e.Namespace, labels: labels.Set(e.Labels)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// compile turns the policies of s into rule table entries, with CIDR
// identities drawn from prefixes (a superset of s's own during an update,
// see commit) and label identities of s plus ghosts: identities endpoints
// still carry in the ipcache during an update, judged by their labels. An
// identity that some policy selects for a direction gets the marker for it;
// each rule adds (peer, protocol, port prefix) entries.
func compile(s *State, prefixes map[netip.Prefix]uint32, ghosts []identity) Rules {
	ids := identities(s)
	for _, g := range ghosts {
		if !slices.ContainsFunc(ids, func(i identity) bool { return i.id == g.id }) {
			ids = append(ids, g)
		}
	}
	out := Rules{}
	refs := make([]string, 0, len(s.Policies))
	for r := range s.Policies {
		refs = append(refs, r)
	}
	sort.Strings(refs)
	rule := uint32(0)
	for _, ref := range refs {
		np := s.Policies[ref]
		sel := mustSelector(&np.Spec.PodSelector)
		var locals []uint32
		for _, id := range ids {
			if id.namespace == np.Namespace && sel.Matches(id.labels) {
				locals = append(locals, id.id)
			}
		}
		ingress, egress := policyTypes(np)
		if ingress {
			for _, r := range np.Spec.Ingress {
				rule++
				peers := peerIDs(np.Namespace, r.From, ids, prefixes)
				emit(out, locals, peers, r.Ports, uint8(abi.AbiHpPolicyDirHP_POL_INGRESS), rule)
			}
			mark(out, locals, uint8(abi.AbiHpPolicyDirHP_POL_INGRESS))
		}
		if egress {
			for _, r := range np.Spec.Egress {
				rule++
				peers := peerIDs(np.Namespace, r.To, ids, prefixes)
				emit(out, locals, peers, r.Ports, uint8(abi.AbiHpPolicyDirHP_POL_EGRESS), rule)
			}
			mark(out, locals, uint8(abi.AbiHpPolicyDirHP_POL_EGRESS))
		}
	}
	return out
}

// policyTypes: as Kubernetes defaults them, Ingress always, Egress when
// the policy has egress rules.
func policyTypes(np networkingv1.NetworkPolicy) (ingress, egress bool) {
	if len(np.Spec.PolicyTypes) == 0 {
		return true, len(np.Spec.Egress) > 0
	}
	for _, t := range np.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ingress = true
		case networkingv1.PolicyTypeEgress:
			egress = true
		}
	}
	return ingress, egress
}

func mustSelector(s *metav1.LabelSelector) labels.Selector {
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return labels.Nothing() // Validate refused it before it got here
	}
	return sel
}

// peerIDs lists the identities a rule's peers stand for; no peers at all is
// every peer (HP_ID_ANY).
func peerIDs(ns string, peers []networkingv1.NetworkPolicyPeer, ids []identity, prefixes map[netip.Prefix]uint32) []uint32 {
	if len(peers) == 0 {
		return []uint32{uint32(abi.AbiHpIdentityHP_ID_ANY)}
	}
	set := map[uint32]bool{}
	for _, p := range peers {
		if p.IPBlock != nil {
			b, err := netpol.ParseBlock(p.IPBlock)
			if err != nil {
				continue
			}
			for pfx, id := range prefixes {
				if inBlock(pfx, b) {
					set[id] = true
				}
			}
			continue
		}
		var podSel, nsSel labels.Selector = labels.Everything(), nil
		if p.PodSelector != nil {
			podSel = mustSelector(p.PodSelector)
		}
		if p.NamespaceSelector != nil {
			nsSel = mustSelector(p.NamespaceSelector)
		}
		for _, id := range ids {
			nsOK := id.namespace == ns
			if nsSel != nil {
				nsOK = nsSel.Matches(labels.Set(netpol.NamespaceLabels(id.namespace)))
			}
			if nsOK && podSel.Matches(id.labels) {
				set[id.id] = true
			}
		}
	}
	out := make([]uint32, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	return out
}

// inBlock: prefix p lies inside the block's cidr and inside none of its
// excepts. The datapath looks an address up by its longest covering prefix,
// and every cidr and except is itself a prefix of the table, so this is
// exactly "the address is in cidr and not in an except".
func inBlock(p netip.Prefix, b netpol.Block) bool {
	if !within(p, b.CIDR) {
		return false
	}
	for _, e := range b.Except {
		if within(p, e) {
			return false
		}
	}
	return true
}

func within(inner, outer netip.Prefix) bool {
	return inner.Bits() >= outer.Bits() && outer.Contains(inner.Addr())
}

func protoNum(p *corev1.Protocol) uint8 {
	if p == nil {
		return 6
	}
	switch *p {
	case corev1.ProtocolUDP:
		return 17
	case corev1.ProtocolSCTP:
		return 132
	}
	return 6
}

// emit adds one entry per (local, peer, port prefix) of a rule.
func emit(out Rules, locals, peers []uint32, ports []networkingv1.NetworkPolicyPort, dir uint8, rule uint32) {
	put := func(k abi.AbiHpPolicyKey) {
		for _, l := range locals {
			for _, p := range peers {
				k.LocalId, k.PeerId = l, p
				if _, ok := out[k]; !ok {
					out[k] = abi.AbiHpPolicyVal{Rule: rule}
				}
			}
		}
	}
	if len(ports) == 0 {
		put(abi.AbiHpPolicyKey{Prefixlen: bitsPeerDir, Dir: dir})
		return
	}
	for _, pp := range ports {
		proto := protoNum(pp.Protocol)
		if pp.Port == nil {
			put(abi.AbiHpPolicyKey{Prefixlen: bitsProto, Dir: dir, Proto: proto})
			continue
		}
		lo := uint16(pp.Port.IntVal)
		hi := lo
		if pp.EndPort != nil {
			hi = uint16(*pp.EndPort)
		}
		for _, pr := range rangePrefixes(lo, hi) {
			// The datapath compares the port as the packet carries it,
			// big-endian; the struct field is stored little-endian.
			put(abi.AbiHpPolicyKey{Prefixlen: bitsProto + uint32(pr.bits), Dir: dir, Proto: proto, Port: bits.ReverseBytes16(pr.port)})
		}
	}
}

// mark records that locals are selected for dir: without a marker the
// datapath leaves the direction open.
func mark(out Rules, locals []uint32, dir uint8) {
	for _, l := range locals {
		out[abi.AbiHpPolicyKey{Prefixlen: bitsPeerDir, LocalId: l, PeerId: uint32(abi.AbiHpIdentityHP_ID_SELECTED), Dir: dir}] = abi.AbiHpPolicyVal{}
	}
}
