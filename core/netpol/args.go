// Package netpol is what the hotpath CLI and the policy plugin share:
// endpoints with their labels, Kubernetes NetworkPolicy documents parsed and
// validated with the Kubernetes API types, and the arguments and answers of
// the policy plugin's Invoke commands.
package netpol

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// NamespaceLabel is the label Kubernetes puts on every namespace with the
// namespace's name, so namespaceSelectors work without extra labelling.
const NamespaceLabel = "kubernetes.io/metadata.name"

// Endpoint is a pod on this node: its address, namespace and labels. It is
// the argument of endpoint-add and an element of endpoint-list.
type Endpoint struct {
	IP        string            `json:"ip"`
	Namespace string            `json:"namespace"`
	Labels    map[string]string `json:"labels"`
	// Filled by the plugin in answers.
	ID       uint16 `json:"id,omitempty"`       // endpoint id (verdict counters)
	Identity uint32 `json:"identity,omitempty"` // security identity of its label set
	Allowed  uint64 `json:"allowed,omitempty"`  // packets allowed by policy (both directions)
	Denied   uint64 `json:"denied,omitempty"`   // packets denied by policy
}

// EndpointDelArgs names the endpoint to delete.
type EndpointDelArgs struct {
	IP string `json:"ip"`
}

// Validate checks an endpoint to add and normalises its address.
func (e *Endpoint) Validate() error {
	a, err := netip.ParseAddr(e.IP)
	if err != nil || !a.Is4() {
		return fmt.Errorf("endpoint %q: want an IPv4 address", e.IP)
	}
	e.IP = a.String()
	if errs := validation.IsDNS1123Label(e.Namespace); len(errs) > 0 {
		return fmt.Errorf("endpoint %s: namespace %q: %s", e.IP, e.Namespace, strings.Join(errs, "; "))
	}
	for k, v := range e.Labels {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return fmt.Errorf("endpoint %s: label key %q: %s", e.IP, k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return fmt.Errorf("endpoint %s: label %s value %q: %s", e.IP, k, v, strings.Join(errs, "; "))
		}
	}
	return nil
}

// IdentityKey is the label set an identity stands for: the pod's labels and
// its namespace, sorted, as one string.
func IdentityKey(namespace string, labels map[string]string) string {
	parts := []string{"k8s:io.kubernetes.pod.namespace=" + namespace}
	for k, v := range labels {
		parts = append(parts, "k8s:"+k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// NamespaceLabels are the labels of a namespace as Kubernetes sets them.
func NamespaceLabels(namespace string) map[string]string {
	return map[string]string{NamespaceLabel: namespace}
}

// ApplyArgs carries parsed, validated policies to policy-apply. Every
// policy replaces the one of the same namespace/name, all at once.
type ApplyArgs struct {
	Policies []networkingv1.NetworkPolicy `json:"policies"`
}

// ApplyResult is the answer of policy-apply.
type ApplyResult struct {
	Applied  []string `json:"applied"` // namespace/name
	Entries  int      `json:"entries"` // rule table entries now installed
	Swaps    int      `json:"swaps"`   // rule table swaps it took
	Duration string   `json:"duration"`
}

// DeleteArgs names a policy to delete.
type DeleteArgs struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// ParseRef splits NAMESPACE/NAME.
func ParseRef(s string) (DeleteArgs, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return DeleteArgs{}, fmt.Errorf("policy %q: want NAMESPACE/NAME", s)
	}
	return DeleteArgs{Namespace: ns, Name: name}, nil
}

// PolicyInfo is one element of policy-list.
type PolicyInfo struct {
	Namespace   string   `json:"namespace"`
	Name        string   `json:"name"`
	PodSelector string   `json:"pod_selector"`
	PolicyTypes []string `json:"policy_types"`
	Ingress     int      `json:"ingress_rules"`
	Egress      int      `json:"egress_rules"`
	Selected    []string `json:"selected"` // endpoint IPs it selects now
}
