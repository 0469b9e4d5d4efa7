package supervisor

import (
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/hotpath/hotpath/lab"
)

func TestTunnelConfigValidate(t *testing.T) {
	good := &TunnelConfig{UnderlayDevice: "eth1"}
	if err := good.validate(); err != nil || good.Port != DefaultTunnelPort || good.Device != DefaultTunnelDevice {
		t.Fatalf("defaults: %+v %v", good, err)
	}
	for _, tc := range []struct {
		c    TunnelConfig
		want string
	}{
		{TunnelConfig{}, "underlay_device"},
		{TunnelConfig{UnderlayDevice: "a/b"}, "underlay_device"},
		{TunnelConfig{UnderlayDevice: "eth1", Device: "much-too-long-name"}, "device"},
		{TunnelConfig{UnderlayDevice: "vx", Device: "vx"}, "also the underlay"},
	} {
		c := tc.c
		if err := c.validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error about %q", tc.c, err, tc.want)
		}
	}
}

// TestPrivilegedTunnelDevice: the supervisor creates the overlay device
// once, re-adopts it on the next start, and refuses (leaving it untouched)
// a device of that name that is not the overlay its config describes.
func TestPrivilegedTunnelDevice(t *testing.T) {
	l := lab.NewT(t, lab.Options{External: true})
	err := l.Node.Do(func() error {
		cfg := Config{Tunnel: &TunnelConfig{UnderlayDevice: lab.UplinkDevice}}
		if err := cfg.Tunnel.validate(); err != nil {
			return err
		}
		if adopted, err := ensureTunnel(&cfg); err != nil || adopted {
			t.Errorf("first start: adopted %v, %v", adopted, err)
			return nil
		}
		link, err := netlink.LinkByName(DefaultTunnelDevice)
		if err != nil {
			return err
		}
		vx, ok := link.(*netlink.Vxlan)
		if !ok || !vx.FlowBased || vx.Port != DefaultTunnelPort || vx.Attrs().MTU != 1500-vxlanOverhead || vx.Attrs().HardwareAddr.String() != TunnelMAC.String() {
			t.Errorf("created device %+v", link)
		}
		if len(cfg.Devices) != 1 || cfg.Devices[0] != DefaultTunnelDevice {
			t.Errorf("devices %v, want the overlay device added", cfg.Devices)
		}
		again := Config{Tunnel: &TunnelConfig{UnderlayDevice: lab.UplinkDevice, Port: DefaultTunnelPort, Device: DefaultTunnelDevice}}
		if adopted, err := ensureTunnel(&again); err != nil || !adopted {
			t.Errorf("second start: adopted %v, %v", adopted, err)
		}
		other := Config{Tunnel: &TunnelConfig{UnderlayDevice: lab.UplinkDevice, Port: 4789, Device: DefaultTunnelDevice}}
		if _, err := ensureTunnel(&other); err == nil || !strings.Contains(err.Error(), "port is 8472, want 4789") {
			t.Errorf("device with another port: %v", err)
		}
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "notvx"}, PeerName: "notvx1"}); err != nil {
			return err
		}
		notVX := Config{Tunnel: &TunnelConfig{UnderlayDevice: lab.UplinkDevice, Port: DefaultTunnelPort, Device: "notvx"}}
		if _, err := ensureTunnel(&notVX); err == nil || !strings.Contains(err.Error(), "not vxlan") {
			t.Errorf("veth device of the same name: %v", err)
		}
		if _, err := netlink.LinkByName("notvx"); err != nil {
			t.Errorf("refused device was touched: %v", err)
		}
		missing := Config{Tunnel: &TunnelConfig{UnderlayDevice: "nosuchdev", Port: DefaultTunnelPort, Device: "hp_vx2"}}
		if _, err := ensureTunnel(&missing); err == nil || !strings.Contains(err.Error(), "nosuchdev") {
			t.Errorf("missing underlay: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
