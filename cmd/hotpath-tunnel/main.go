// Command hotpath-tunnel is the VXLAN overlay plugin.
package main

import (
	"github.com/hotpath/hotpath/core/plugin"
	"github.com/hotpath/hotpath/plugins/tunnel"
)

func main() { plugin.Serve(tunnel.New(plugin.Logger())) }
