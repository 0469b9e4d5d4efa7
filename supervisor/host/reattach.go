package host

import (
	"fmt"
	"net"

	goplugin "github.com/hashicorp/go-plugin"
)

// Reattach is what a restarted supervisor needs to adopt a running plugin.
// go-plugin's ReattachConfig is not serialisable (net.Addr, a func) and does
// not even record the negotiated protocol version for a plugin it started,
// so we persist our own.
type Reattach struct {
	Pid             int    `json:"pid"`
	Network         string `json:"network"`
	Address         string `json:"address"`
	ProtocolVersion int    `json:"protocol_version"`
	// Exe is what /proc/<pid>/exe named when the plugin started: a
	// supervisor that must end a plugin it cannot reattach checks that the
	// pid still runs it (a plugin started through a script runs another
	// file than the configured path).
	Exe string `json:"exe,omitempty"`
}

// ReattachFrom converts go-plugin's ReattachConfig. version is the
// negotiated protocol version (Client.NegotiatedVersion), which go-plugin
// leaves out of the ReattachConfig of a plugin it started.
func ReattachFrom(c *goplugin.ReattachConfig, version int) Reattach {
	r := Reattach{Pid: c.Pid, ProtocolVersion: version}
	if c.Addr != nil {
		r.Network, r.Address = c.Addr.Network(), c.Addr.String()
	}
	if r.ProtocolVersion == 0 {
		r.ProtocolVersion = c.ProtocolVersion
	}
	return r
}

// Config converts r to a go-plugin ReattachConfig for the gRPC protocol.
// The client using it must set Plugins, not VersionedPlugins (go-plugin
// skips version negotiation on reattach), and cannot use SecureConfig or
// AutoMTLS.
func (r Reattach) Config() (*goplugin.ReattachConfig, error) {
	if r.Pid <= 0 {
		return nil, fmt.Errorf("reattach: bad pid %d", r.Pid)
	}
	var addr net.Addr
	var err error
	switch r.Network {
	case "unix":
		addr, err = net.ResolveUnixAddr("unix", r.Address)
	case "tcp":
		addr, err = net.ResolveTCPAddr("tcp", r.Address)
	default:
		return nil, fmt.Errorf("reattach: unknown network %q", r.Network)
	}
	if err != nil {
		return nil, fmt.Errorf("reattach: %w", err)
	}
	return &goplugin.ReattachConfig{
		Protocol:        goplugin.ProtocolGRPC,
		ProtocolVersion: r.ProtocolVersion,
		Addr:            addr,
		Pid:             r.Pid,
	}, nil
}
