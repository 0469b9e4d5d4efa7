package plugin

import (
	"context"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// Handshake is shared by the supervisor and every plugin binary. The cookie
// is not a secret: it only stops a plugin from being run by hand or by a
// different go-plugin host by mistake.
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
