// Command hotpath-lb is the load balancer plugin.
package main

import (
	"github.com/hotpath/hotpath/core/plugin"
	"github.com/hotpath/hotpath/plugins/lb"
)

func main() { plugin.Serve(lb.New(plugin.Logger())) }
