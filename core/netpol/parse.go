package netpol

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// Parse reads one or many YAML documents (separated by ---), each a
// networking.k8s.io/v1 NetworkPolicy, and validates them. An error names the
// document (1-based) and the field; on error nothing is returned.
func Parse(data []byte) ([]networkingv1.NetworkPolicy, error) {
	var out []networkingv1.NetworkPolicy
	seen := map[string]int{}
	for i, doc := range splitDocs(data) {
		n := i + 1
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var np networkingv1.NetworkPolicy
		if err := yaml.UnmarshalStrict(doc, &np); err != nil {
			msg := strings.TrimPrefix(err.Error(), "error unmarshaling JSON: while decoding JSON: ")
			return nil, fmt.Errorf("document %d: %s", n, strings.TrimPrefix(msg, "json: "))
		}
		if np.Namespace == "" {
			np.Namespace = "default"
		}
		if err := Validate(&np); err != nil {
			return nil, fmt.Errorf("document %d (%s/%s): %w", n, np.Namespace, np.Name, err)
		}
		ref := np.Namespace + "/" + np.Name
		if prev, dup := seen[ref]; dup {
			return nil, fmt.Errorf("document %d: %s already defined by document %d", n, ref, prev)
		}
		seen[ref] = n
		out = append(out, np)
	}
	if len(out) == 0 {
		return nil, errors.New("no NetworkPolicy documents")
	}
	return out, nil
}

func splitDocs(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if t := bytes.TrimRight(line, " \t\r\n"); bytes.Equal(t, []byte("---")) || bytes.HasPrefix(t, []byte("--- ")) {
			docs = append(docs, bytes.Clone(cur.Bytes()))
			cur.Reset()
			continue
		}
		cur.Write(line)
	}
	return append(docs, cur.Bytes())
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			b.Write(t)
		}
	}
	return b.Bytes()
}

// Validate checks what the policy plugin enforces: kind and apiVersion,
// names, selectors, ports (named ports are refused), ipBlocks and
// policyTypes. Errors name the field as Kubernetes does.
func Validate(np *networkingv1.NetworkPolicy) error {
	if np.APIVersion != "networking.k8s.io/v1" || np.Kind != "NetworkPolicy" {
		return fmt.Errorf("apiVersion/kind %q/%q: want networking.k8s.io/v1 NetworkPolicy", np.APIVersion, np.Kind)
	}
	if errs := validation.IsDNS1123Subdomain(np.Name); len(errs) > 0 {
		return fmt.Errorf("metadata.name %q: %s", np.Name, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Label(np.Namespace); len(errs) > 0 {
		return fmt.Errorf("metadata.namespace %q: %s", np.Namespace, strings.Join(errs, "; "))
	}
	if err := checkSelector("spec.podSelector", &np.Spec.PodSelector); err != nil {
		return err
	}
	for i, t := range np.Spec.PolicyTypes {
		if t != networkingv1.PolicyTypeIngress && t != networkingv1.PolicyTypeEgress {
			return fmt.Errorf("spec.policyTypes[%d]: %q: want Ingress or Egress", i, t)
		}
	}
	for i, r := range np.Spec.Ingress {
		f := fmt.Sprintf("spec.ingress[%d]", i)
		if err := checkPeers(f+".from", r.From); err != nil {
			return err
		}
		if err := checkPorts(f+".ports", r.Ports); err != nil {
			return err
		}
	}
	for i, r := range np.Spec.Egress {
		f := fmt.Sprintf("spec.egress[%d]", i)
		if err := checkPeers(f+".to", r.To); err != nil {
			return err
		}
		if err := checkPorts(f+".ports", r.Ports); err != nil {
			return err
		}
	}
	return nil
}

func checkSelector(field string, s *metav1.LabelSelector) error {
	if s == nil {
		return nil
	}
	if _, err := metav1.LabelSelectorAsSelector(s); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}

func checkPeers(field string, peers []networkingv1.NetworkPolicyPeer) error {
	for i, p := range peers {
		f := fmt.Sprintf("%s[%d]", field, i)
		if p.IPBlock != nil {
			if p.PodSelector != nil || p.NamespaceSelector != nil {
				return fmt.Errorf("%s: ipBlock may not be combined with podSelector or namespaceSelector", f)
			}
			if _, err := ParseBlock(p.IPBlock); err != nil {
				return fmt.Errorf("%s.ipBlock: %w", f, err)
			}
			continue
		}
		if p.PodSelector == nil && p.NamespaceSelector == nil {
			return fmt.Errorf("%s: must specify podSelector, namespaceSelector or ipBlock", f)
		}
		if err := checkSelector(f+".podSelector", p.PodSelector); err != nil {
			return err
		}
		if err := checkSelector(f+".namespaceSelector", p.NamespaceSelector); err != nil {
			return err
		}
	}
	return nil
}

// Block is an ipBlock with parsed, masked prefixes.
type Block struct {
	CIDR   netip.Prefix
	Except []netip.Prefix
}

// ParseBlock parses an IPv4 ipBlock; every except must lie inside cidr.
func ParseBlock(b *networkingv1.IPBlock) (Block, error) {
	c, err := netip.ParsePrefix(b.CIDR)
	if err != nil || !c.Addr().Is4() {
		return Block{}, fmt.Errorf("cidr %q: want an IPv4 CIDR", b.CIDR)
	}
	out := Block{CIDR: c.Masked()}
	for i, e := range b.Except {
		p, err := netip.ParsePrefix(e)
		if err != nil || !p.Addr().Is4() {
			return Block{}, fmt.Errorf("except[%d] %q: want an IPv4 CIDR", i, e)
		}
		p = p.Masked()
		if p.Bits() <= out.CIDR.Bits() || !out.CIDR.Contains(p.Addr()) {
			return Block{}, fmt.Errorf("except[%d] %s: must be strictly within cidr %s", i, p, out.CIDR)
		}
		out.Except = append(out.Except, p)
	}
	return out, nil
}

func checkPorts(field string, ports []networkingv1.NetworkPolicyPort) error {
	for i, p := range ports {
		f := fmt.Sprintf("%s[%d]", field, i)
		if p.Protocol != nil {
			switch *p.Protocol {
			case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
			default:
				return fmt.Errorf("%s.protocol: %q: want TCP, UDP or SCTP", f, *p.Protocol)
			}
		}
		if p.Port == nil {
			if p.EndPort != nil {
				return fmt.Errorf("%s.endPort: requires port", f)
			}
			continue
		}
		if p.Protocol != nil && *p.Protocol == corev1.ProtocolSCTP {
			return fmt.Errorf("%s.port: SCTP ports are not parsed by the datapath yet: use protocol SCTP without a port", f)
		}
		if p.Port.Type != 0 { // intstr.String
			return fmt.Errorf("%s.port: named port %q is not supported (no container port names on hotpath endpoints): use a number", f, p.Port.StrVal)
		}
		if p.Port.IntVal < 1 || p.Port.IntVal > 65535 {
			return fmt.Errorf("%s.port: %d: want 1-65535", f, p.Port.IntVal)
		}
		if p.EndPort != nil && (*p.EndPort < p.Port.IntVal || *p.EndPort > 65535) {
			return fmt.Errorf("%s.endPort: %d: want port (%d) to 65535", f, *p.EndPort, p.Port.IntVal)
		}
	}
	return nil
}

// ReadAll is io.ReadAll with a size bound for policy files.
func ReadAll(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, 64<<20+1))
	if err != nil {
		return nil, err
	}
	if len(b) > 64<<20 {
		return nil, errors.New("policy input larger than 64 MiB")
	}
	return b, nil
}
