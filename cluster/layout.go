package cluster

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/hotpath/hotpath/core/netpol"
	"github.com/hotpath/hotpath/core/services"
)

// Node is the value of <prefix>/nodes/<name>.
type Node struct {
	Name    string `json:"name"`
	IP      string `json:"ip,omitempty"`       // underlay IPv4
	PodCIDR string `json:"pod_cidr,omitempty"` // pod addresses it owns
}

// Keys builds and reads the keys under one prefix.
type Keys struct{ Prefix string }

func (k Keys) root() string              { return k.Prefix + "/" }
func (k Keys) Service(vip string) string { return k.Prefix + "/services/" + vip }
func (k Keys) Services() string          { return k.Prefix + "/services/" }
func (k Keys) Node(name string) string   { return k.Prefix + "/nodes/" + name }
func (k Keys) Nodes() string             { return k.Prefix + "/nodes/" }
func (k Keys) Endpoint(node, ip string) string {
	return k.Prefix + "/endpoints/" + node + "/" + ip
}
func (k Keys) Policy(ns, name string) string { return k.Prefix + "/policies/" + ns + "/" + name }

// Desired is the state the keys describe, for one node.
type Desired struct {
	Services  map[string]services.ServiceAddArgs    // by normalized VIP
	Endpoints map[string]netpol.Endpoint            // this node's, by IP
	Policies  map[string]networkingv1.NetworkPolicy // by namespace/name
	Nodes     map[string]Node                       // every registered node
	// Bad lists keys whose values were refused, with the reason; they
	// change nothing.
	Bad map[string]string
}

// NewDesired is an empty desired state.
func NewDesired() *Desired {
	return &Desired{
		Services: map[string]services.ServiceAddArgs{}, Endpoints: map[string]netpol.Endpoint{},
		Policies: map[string]networkingv1.NetworkPolicy{}, Nodes: map[string]Node{}, Bad: map[string]string{},
	}
}

// set applies one key's value (nil: deleted) for node self. A value that
// is refused changes nothing: what the key said before stays.
func (d *Desired) set(k Keys, self, key string, val []byte) {
	delete(d.Bad, key)
	if err := d.apply(k, self, key, val); err != nil {
		d.Bad[key] = err.Error()
	}
}

func (d *Desired) apply(k Keys, self, key string, val []byte) error {
	rest, ok := strings.CutPrefix(key, k.root())
	if !ok {
		return fmt.Errorf("outside prefix")
	}
	kind, name, _ := strings.Cut(rest, "/")
	switch kind {
	case "services":
		return d.setService(name, val)
	case "endpoints":
		node, ip, _ := strings.Cut(name, "/")
		if node != self {
			return nil
		}
		return d.setEndpoint(ip, val)
	case "policies":
		return d.setPolicy(name, val)
	case "nodes":
		return d.setNode(name, val)
	}
	return fmt.Errorf("unknown kind %q (have services, endpoints, policies, nodes)", kind)
}

func (d *Desired) setService(name string, val []byte) error {
	vip, err := services.ParseVIP(name)
	if err != nil {
		return err
	}
	if val == nil {
		delete(d.Services, vip.String())
		return nil
	}
	var a services.ServiceAddArgs
	if err := strictJSON(val, &a); err != nil {
		return err
	}
	if _, err := a.Spec(); err != nil {
		return err
	}
	if v, _ := services.ParseVIP(a.VIP); v != vip {
		return fmt.Errorf("value names vip %q, key %s", a.VIP, vip)
	}
	a.VIP = vip.String()
	d.Services[a.VIP] = a
	return nil
}

func (d *Desired) setEndpoint(ip string, val []byte) error {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return fmt.Errorf("endpoint key %q: want an IPv4 address", ip)
	}
	if val == nil {
		delete(d.Endpoints, a.String())
		return nil
	}
	var e netpol.Endpoint
	if err := strictJSON(val, &e); err != nil {
		return err
	}
	if err := e.Validate(); err != nil {
		return err
	}
	if e.IP != a.String() {
		return fmt.Errorf("value names ip %s, key %s", e.IP, a)
	}
	d.Endpoints[e.IP] = netpol.Endpoint{IP: e.IP, Namespace: e.Namespace, Labels: e.Labels}
	return nil
}

func (d *Desired) setPolicy(ref string, val []byte) error {
	r, err := netpol.ParseRef(ref)
	if err != nil {
		return err
	}
	if val == nil {
		delete(d.Policies, ref)
		return nil
	}
	var np networkingv1.NetworkPolicy
	if err := json.Unmarshal(val, &np); err != nil {
		return fmt.Errorf("policy %s: %w", ref, err)
	}
	if np.Namespace != r.Namespace || np.Name != r.Name {
		return fmt.Errorf("value names policy %s/%s, key %s", np.Namespace, np.Name, ref)
	}
	if err := netpol.Validate(&np); err != nil {
		return err
	}
	d.Policies[ref] = np
	return nil
}

func (d *Desired) setNode(name string, val []byte) error {
	if val == nil {
		delete(d.Nodes, name)
		return nil
	}
	var n Node
	if err := strictJSON(val, &n); err != nil {
		return err
	}
	if n.Name != name {
		return fmt.Errorf("value names node %q, key %q", n.Name, name)
	}
	d.Nodes[name] = n
	return nil
}

func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
