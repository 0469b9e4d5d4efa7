package plugin

import (
	"context"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// Handshake is shared by the supervisor and every plugin binary. The cookie
// is not a secret: it only stops a plugin from being run by hand or by a
// different go-plugin host by mistake.
//
// A plugin written in another language follows go-plugin's handshake: it
// is started with HOTPATH_PLUGIN=<MagicCookieValue> in its environment
// (and PLUGIN_UNIX_SOCKET_DIR naming where to put its socket), serves the
// Datapath service of proto/datapath.proto over gRPC on a unix socket, and
// prints one line to stdout:
//
//	1|2|unix|/path/to/socket|grpc
//
// go-plugin's core protocol version (1), this package's ProtocolVersion
// (2), the network, the address and the protocol. go-plugin's Go server
// also serves grpc.health.v1.Health (service "plugin"); the supervisor does
// not call it today, but serving it keeps a plugin compatible with
// go-plugin's Ping.
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "HOTPATH_PLUGIN",
	MagicCookieValue: "314ca391e603ce6aae0b42bf13c2ff8d",
}

// GRPC is the go-plugin shim for a Datapath. Impl is set in the plugin
// process and left nil in the host.
type GRPC struct {
	goplugin.NetRPCUnsupportedPlugin
	Impl Datapath
}

var _ goplugin.GRPCPlugin = (*GRPC)(nil)

// GRPCServer registers the plugin's implementation.
func (p *GRPC) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	RegisterServer(s, p.Impl)
	return nil
}

// GRPCClient returns the host's view of the plugin: a Datapath.
func (p *GRPC) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return NewClient(cc), nil
}

// PluginSet is the host's plugin set: one datapath plugin under Name.
func PluginSet() goplugin.PluginSet {
	return goplugin.PluginSet{Name: &GRPC{}}
}
