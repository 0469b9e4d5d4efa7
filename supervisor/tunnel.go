package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/vishvananda/netlink"
)

// TunnelConfig asks the supervisor for the node's overlay device: a
// collect_md ("external") VXLAN device over the underlay, which the tunnel
// plugin's stage sends remote pods' packets to. Like the TCX links it is a
// kernel object the supervisor creates once and re-adopts ever after; a
// plugin never creates one, and a supervisor that dies leaves it working.
type TunnelConfig struct {
	UnderlayDevice string `json:"underlay_device"`
	Port           uint16 `json:"port,omitempty"`   // UDP destination port, default 8472
	Device         string `json:"device,omitempty"` // default hotpath_vxlan
}

// Tunnel defaults.
const (
	DefaultTunnelPort   = 8472
	DefaultTunnelDevice = "hotpath_vxlan"
	// vxlanOverhead is what encapsulation adds: outer IPv4, UDP, VXLAN and
	// inner Ethernet headers.
	vxlanOverhead = 20 + 8 + 8 + 14
)

// TunnelMAC is the Ethernet address of every node's overlay device. The
// same on every node, so the tunnel stage addresses an encapsulated frame to
// it and the receiving node takes the decapsulated frame as its own without
// knowing the remote device.
var TunnelMAC = net.HardwareAddr{0x02, 0x68, 0x70, 0x74, 0x6e, 0x6c}

func (t *TunnelConfig) defaults() {
	if t.Port == 0 {
		t.Port = DefaultTunnelPort
	}
	if t.Device == "" {
		t.Device = DefaultTunnelDevice
	}
}

func (t *TunnelConfig) validate() error {
	if t == nil {
		return nil
	}
	t.defaults()
	for key, d := range map[string]string{"underlay_device": t.UnderlayDevice, "device": t.Device} {
		if d == "" || len(d) > 15 || strings.ContainsAny(d, "/ \t") {
			return fmt.Errorf("tunnel: %s %q: not a valid interface name", key, d)
		}
	}
	if t.UnderlayDevice == t.Device {
		return fmt.Errorf("tunnel: device %s is also the underlay device", t.Device)
	}
	return nil
}

// ensureTunnel creates the overlay device, or re-adopts the one a previous
// supervisor created, and adds it to the devices the entry programs attach
// to. A device of that name that is not such an overlay is an error, left
// untouched.
func ensureTunnel(cfg *Config) (adopted bool, err error) {
	t := cfg.Tunnel
	if t == nil {
		return false, nil
	}
	under, err := netlink.LinkByName(t.UnderlayDevice)
	if err != nil {
		return false, fmt.Errorf("tunnel underlay device %s: %w", t.UnderlayDevice, err)
	}
	link, err := netlink.LinkByName(t.Device)
	var nf netlink.LinkNotFoundError
	switch {
	case errors.As(err, &nf):
		if link, err = createVXLAN(t, under); err != nil {
			return false, err
		}
	case err != nil:
		return false, fmt.Errorf("tunnel device %s: %w", t.Device, err)
	default:
		if err := checkVXLAN(t, link, under); err != nil {
			return false, err
		}
		adopted = true
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return adopted, fmt.Errorf("tunnel device %s: set up: %w", t.Device, err)
	}
	if !contains(cfg.Devices, t.Device) {
		cfg.Devices = append(cfg.Devices, t.Device)
	}
	return adopted, nil
}

func createVXLAN(t *TunnelConfig, under netlink.Link) (netlink.Link, error) {
	vx := &netlink.Vxlan{
		LinkAttrs: netlink.LinkAttrs{
			Name:         t.Device,
			MTU:          under.Attrs().MTU - vxlanOverhead,
			HardwareAddr: TunnelMAC,
		},
		VtepDevIndex: under.Attrs().Index,
		Port:         int(t.Port),
		FlowBased:    true,
	}
	if err := netlink.LinkAdd(vx); err != nil {
		return nil, fmt.Errorf("create tunnel device %s on %s: %w", t.Device, t.UnderlayDevice, err)
	}
	link, err := netlink.LinkByName(t.Device)
	if err != nil {
		return nil, fmt.Errorf("tunnel device %s: %w", t.Device, err)
	}
	return link, nil
}

// checkVXLAN accepts a device only when it is the overlay this config
// describes.
func checkVXLAN(t *TunnelConfig, link netlink.Link, under netlink.Link) error {
	vx, ok := link.(*netlink.Vxlan)
	var diffs []string
	switch {
	case !ok:
		diffs = append(diffs, fmt.Sprintf("is a %s device, not vxlan", link.Type()))
	default:
		if !vx.FlowBased {
			diffs = append(diffs, "is not collect_md (external)")
		}
		if vx.Port != int(t.Port) {
			diffs = append(diffs, fmt.Sprintf("port is %d, want %d", vx.Port, t.Port))
		}
		if vx.VtepDevIndex != under.Attrs().Index {
			diffs = append(diffs, fmt.Sprintf("underlay ifindex is %d, want %d (%s)", vx.VtepDevIndex, under.Attrs().Index, t.UnderlayDevice))
		}
		if !bytes.Equal(link.Attrs().HardwareAddr, TunnelMAC) {
			diffs = append(diffs, fmt.Sprintf("address is %s, want %s", link.Attrs().HardwareAddr, TunnelMAC))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("tunnel device %s exists but %s: remove it or fix the config", t.Device, strings.Join(diffs, ", "))
	}
	return nil
}
