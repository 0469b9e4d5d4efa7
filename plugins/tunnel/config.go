package tunnel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// DefaultDevice is the overlay device the supervisor creates when its
// config names none ("tunnel": {"device": ...}).
const DefaultDevice = "hotpath_vxlan"

// MaxPodCIDRs bounds pod_cidrs.
const MaxPodCIDRs = 16

// Config is the tunnel plugin's block of the supervisor config.
type Config struct {
	// Device is the collect_md VXLAN device the supervisor created; it must
	// match the supervisor's "tunnel.device". Default hotpath_vxlan.
	Device string `json:"device,omitempty"`
	// PodCIDRs are this node's own pod CIDRs: a route into one of them is
	// refused, it would send local pods' traffic away.
	PodCIDRs []string `json:"pod_cidrs,omitempty"`
}

// Settings is a validated Config, resolved against the node.
type Settings struct {
	Device  string
	Ifindex int
	MTU     int
	MAC     net.HardwareAddr
	Local   []netip.Prefix
}

// ParseConfig reads raw and checks what can be checked without the node;
// each error names the key.
func ParseConfig(raw json.RawMessage) (Settings, error) {
	var c Config
	if t := bytes.TrimSpace(raw); len(t) > 0 && string(t) != "null" {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return Settings{}, fmt.Errorf("tunnel config: %w", err)
		}
	}
	s := Settings{Device: c.Device}
	if s.Device == "" {
		s.Device = DefaultDevice
	}
	if len(s.Device) > 15 || strings.ContainsAny(s.Device, "/ \t") {
		return s, fmt.Errorf("tunnel config: device %q: want an interface name", s.Device)
	}
	if len(c.PodCIDRs) > MaxPodCIDRs {
		return s, fmt.Errorf("tunnel config: pod_cidrs: at most %d", MaxPodCIDRs)
	}
	for _, str := range c.PodCIDRs {
		p, err := netip.ParsePrefix(str)
		if err != nil || !p.Addr().Is4() {
			return s, fmt.Errorf("tunnel config: pod_cidrs: %q is not an IPv4 prefix", str)
		}
		s.Local = append(s.Local, p.Masked())
	}
	return s, nil
}

// Resolve finds the overlay device: its index, MTU and address.
func (s *Settings) Resolve() error {
	ifc, err := net.InterfaceByName(s.Device)
	if err != nil {
		return fmt.Errorf("tunnel device %s (created by the supervisor's \"tunnel\" config): %w", s.Device, err)
	}
	if len(ifc.HardwareAddr) != 6 {
		return fmt.Errorf("tunnel device %s: no Ethernet address", s.Device)
	}
	s.Ifindex, s.MTU, s.MAC = ifc.Index, ifc.MTU, ifc.HardwareAddr
	return nil
}

func settings(raw json.RawMessage) (Settings, error) {
	s, err := ParseConfig(raw)
	if err != nil {
		return s, err
	}
	return s, s.Resolve()
}
