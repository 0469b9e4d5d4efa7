package nat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/hotpath/hotpath/core/ctmap"
)

// MaxCIDRs bounds cluster_cidrs and exclude_cidrs: the datapath compares
// each packet against them in a bounded loop (NAT_CIDRS in bpf/nat.h).
const MaxCIDRs = 16

// Config is the nat plugin's block of the supervisor config.
type Config struct {
	MasqueradeDevice string         `json:"masquerade_device"`        // required
	MasqueradeIP     string         `json:"masquerade_ip,omitempty"`  // default: the device's first IPv4 address
	ClusterCIDRs     []string       `json:"cluster_cidrs"`            // required: pod addresses; never a destination of masquerade
	PortRange        string         `json:"port_range,omitempty"`     // "A-B", default "32768-60999"
	ExcludeCIDRs     []string       `json:"exclude_cidrs,omitempty"`  // destinations never masqueraded
	NodePortRange    string         `json:"nodeport_range,omitempty"` // never handed out, default "30000-32767"
	GCInterval       ctmap.Duration `json:"gc_interval,omitempty"`    // orphan purge period, default 30s
	ListenRefresh    ctmap.Duration `json:"listen_refresh,omitempty"` // re-read of the node's listening ports, default 2s
	Tries            uint32         `json:"tries,omitempty"`          // ports probed per new flow, default 128
}

// Settings is a validated Config, resolved against the node.
type Settings struct {
	Device        string
	Ifindex       int
	Addr          netip.Addr
	Cluster       []netip.Prefix
	Exclude       []netip.Prefix
	PortMin       uint16
	PortMax       uint16
	NodePortMin   uint16
	NodePortMax   uint16
	GCInterval    time.Duration
	ListenRefresh time.Duration
	Tries         uint32
}

// DefaultPortRange is Linux's default ephemeral port range.
const DefaultPortRange = "32768-60999"

// DefaultNodePortRange is Kubernetes' default NodePort range.
const DefaultNodePortRange = "30000-32767"

// ParseConfig reads raw and checks every value that can be checked without
// the node; Resolve checks the rest. Each error names the key.
func ParseConfig(raw json.RawMessage) (Config, Settings, error) {
	var cfg Config
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return cfg, Settings{}, fmt.Errorf("nat config: masquerade_device is required")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, Settings{}, fmt.Errorf("nat config: %w", err)
	}
	s, err := cfg.settings()
	return cfg, s, err
}

func (c Config) settings() (Settings, error) {
	s := Settings{Device: c.MasqueradeDevice, GCInterval: 30 * time.Second, ListenRefresh: 2 * time.Second, Tries: 128}
	if c.MasqueradeDevice == "" || len(c.MasqueradeDevice) > 15 || strings.ContainsAny(c.MasqueradeDevice, "/ \t") {
		return s, fmt.Errorf("nat config: masquerade_device %q: want an interface name (required)", c.MasqueradeDevice)
	}
	if c.MasqueradeIP != "" {
		a, err := netip.ParseAddr(c.MasqueradeIP)
		if err != nil || !a.Is4() {
			return s, fmt.Errorf("nat config: masquerade_ip %q: want an IPv4 address", c.MasqueradeIP)
		}
		s.Addr = a
	}
	var err error
	if s.Cluster, err = prefixes("cluster_cidrs", c.ClusterCIDRs); err != nil {
		return s, err
	}
	if len(s.Cluster) == 0 {
		return s, fmt.Errorf("nat config: cluster_cidrs: want at least one CIDR (the pod addresses to masquerade)")
	}
	if s.Exclude, err = prefixes("exclude_cidrs", c.ExcludeCIDRs); err != nil {
		return s, err
	}
	if s.PortMin, s.PortMax, err = portRange("port_range", c.PortRange, DefaultPortRange); err != nil {
		return s, err
	}
	if s.NodePortMin, s.NodePortMax, err = portRange("nodeport_range", c.NodePortRange, DefaultNodePortRange); err != nil {
		return s, err
	}
	if s.NodePortMin <= s.PortMin && s.PortMax <= s.NodePortMax {
		return s, fmt.Errorf("nat config: port_range %d-%d lies inside nodeport_range %d-%d: no port left to hand out",
			s.PortMin, s.PortMax, s.NodePortMin, s.NodePortMax)
	}
	if c.GCInterval != 0 {
		if c.GCInterval.D() < time.Second {
			return s, fmt.Errorf("nat config: gc_interval %s: want at least 1s", c.GCInterval.D())
		}
		s.GCInterval = c.GCInterval.D()
	}
	if c.ListenRefresh != 0 {
		if c.ListenRefresh.D() < 100*time.Millisecond {
			return s, fmt.Errorf("nat config: listen_refresh %s: want at least 100ms", c.ListenRefresh.D())
		}
		s.ListenRefresh = c.ListenRefresh.D()
	}
	if c.Tries != 0 {
		if c.Tries > 65536 {
			return s, fmt.Errorf("nat config: tries %d: want 1..65536", c.Tries)
		}
		s.Tries = c.Tries
	}
	return s, nil
}

func prefixes(key string, in []string) ([]netip.Prefix, error) {
	if len(in) > MaxCIDRs {
		return nil, fmt.Errorf("nat config: %s: %d CIDRs, at most %d", key, len(in), MaxCIDRs)
	}
	var out []netip.Prefix
	for _, s := range in {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			return nil, fmt.Errorf("nat config: %s: %q is not an IPv4 CIDR", key, s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func portRange(key, v, def string) (uint16, uint16, error) {
	if v == "" {
		v = def
	}
	a, b, ok := strings.Cut(v, "-")
	lo, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 16)
	hi, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 16)
	if !ok || err1 != nil || err2 != nil || lo == 0 || lo > hi {
		return 0, 0, fmt.Errorf("nat config: %s %q: want \"A-B\" with 1 <= A <= B <= 65535", key, v)
	}
	return uint16(lo), uint16(hi), nil
}

// Resolve finds the masquerade device in this network namespace and, when
// masquerade_ip is not set, its first IPv4 address.
func (s *Settings) Resolve() error {
	ifc, err := net.InterfaceByName(s.Device)
	if err != nil {
		return fmt.Errorf("nat config: masquerade_device %s: %w", s.Device, err)
	}
	s.Ifindex = ifc.Index
	if s.Addr.IsValid() {
		return nil
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return fmt.Errorf("nat config: masquerade_device %s: addresses: %w", s.Device, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP.To4()); ok && n.IP.To4() != nil {
				s.Addr = ip
				return nil
			}
		}
	}
	return fmt.Errorf("nat config: masquerade_device %s has no IPv4 address; set masquerade_ip", s.Device)
}
