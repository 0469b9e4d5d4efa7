package cluster

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Config enables the etcd source. Its keys sit at the top level of the
// supervisor's JSON config.
type Config struct {
	KVStoreEndpoints []string `json:"kvstore_endpoints,omitempty"`
	KVStorePrefix    string   `json:"kvstore_prefix,omitempty"` // default DefaultPrefix
	NodeName         string   `json:"node_name,omitempty"`
	NodeIP           string   `json:"node_ip,omitempty"`  // underlay address other nodes tunnel to
	PodCIDR          string   `json:"pod_cidr,omitempty"` // this node's pod CIDR
	// Plugins answering each family of commands; defaults lb, policy, tunnel.
	LBPlugin     string `json:"lb_plugin,omitempty"`
	PolicyPlugin string `json:"policy_plugin,omitempty"`
	TunnelPlugin string `json:"tunnel_plugin,omitempty"`
	// Kubernetes takes desired state from the Kubernetes API instead of
	// etcd: "in-cluster" (the pod's service account) or a kubeconfig path.
	Kubernetes string `json:"kubernetes,omitempty"`
	// LeaseTTLSeconds bounds how long a dead node's routes stay (default 10).
	LeaseTTLSeconds int64 `json:"lease_ttl_seconds,omitempty"`
}

// DefaultPrefix is the key prefix when none is configured.
const DefaultPrefix = "/hotpath"

// Enabled reports whether the etcd source is configured.
func (c *Config) Enabled() bool { return len(c.KVStoreEndpoints) > 0 }

// Defaults fills what is empty.
func (c *Config) Defaults() {
	if c.KVStorePrefix == "" {
		c.KVStorePrefix = DefaultPrefix
	}
	c.KVStorePrefix = strings.TrimRight(c.KVStorePrefix, "/")
	if c.LBPlugin == "" {
		c.LBPlugin = "lb"
	}
	if c.PolicyPlugin == "" {
		c.PolicyPlugin = "policy"
	}
	if c.TunnelPlugin == "" {
		c.TunnelPlugin = "tunnel"
	}
	if c.LeaseTTLSeconds == 0 {
		c.LeaseTTLSeconds = 10
	}
}

var nodeName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$`)

// Validate checks the config; an empty config (source off) is valid.
func (c *Config) Validate() error {
	if c.Kubernetes != "" {
		if c.Enabled() {
			return fmt.Errorf("cluster: kubernetes and kvstore_endpoints exclude each other: pick one source")
		}
		if !nodeName.MatchString(c.NodeName) {
			return fmt.Errorf("cluster: kubernetes source: node name %q: want this node's Kubernetes name", c.NodeName)
		}
		return nil
	}
	if !c.Enabled() {
		if c.NodeName != "" || c.NodeIP != "" || c.PodCIDR != "" {
			return fmt.Errorf("cluster: node_name, node_ip and pod_cidr need kvstore_endpoints or kubernetes")
		}
		return nil
	}
	if err := ValidEndpoints(c.KVStoreEndpoints); err != nil {
		return err
	}
	if !nodeName.MatchString(c.NodeName) {
		return fmt.Errorf("cluster: node name %q: want a DNS name (lowercase letters, digits, '-', '.')", c.NodeName)
	}
	if !strings.HasPrefix(c.KVStorePrefix, "/") && c.KVStorePrefix != "" {
		return fmt.Errorf("cluster: kvstore prefix %q: want an absolute key like /hotpath", c.KVStorePrefix)
	}
	if c.NodeIP != "" {
		if a, err := netip.ParseAddr(c.NodeIP); err != nil || !a.Is4() || a.IsUnspecified() || a.IsLoopback() {
			return fmt.Errorf("cluster: node ip %q: want the node's underlay IPv4 address", c.NodeIP)
		}
	}
	if c.PodCIDR != "" {
		if p, err := netip.ParsePrefix(c.PodCIDR); err != nil || !p.Addr().Is4() {
			return fmt.Errorf("cluster: pod cidr %q: want an IPv4 prefix like 10.241.0.0/24", c.PodCIDR)
		}
	}
	if c.LeaseTTLSeconds < 0 || c.LeaseTTLSeconds > 3600 {
		return fmt.Errorf("cluster: lease ttl %ds: want 1..3600", c.LeaseTTLSeconds)
	}
	return nil
}

// ValidEndpoints checks etcd client URLs (http://HOST:PORT).
func ValidEndpoints(eps []string) error {
	if len(eps) == 0 {
		return fmt.Errorf("cluster: no kvstore endpoints")
	}
	for _, e := range eps {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Port() == "" {
			return fmt.Errorf("cluster: kvstore endpoint %q: want http://HOST:PORT", e)
		}
	}
	return nil
}

// SplitEndpoints reads "URL[,URL]".
func SplitEndpoints(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

func (c *Config) leaseTTL() time.Duration { return time.Duration(c.LeaseTTLSeconds) * time.Second }
