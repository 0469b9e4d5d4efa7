// Command hotpath-nat is the masquerade (SNAT) plugin.
package main

import (
	"github.com/hotpath/hotpath/core/plugin"
	"github.com/hotpath/hotpath/plugins/nat"
)

func main() { plugin.Serve(nat.New(plugin.Logger())) }
