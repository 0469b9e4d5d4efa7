// Command hotpath-ct is the conntrack plugin.
package main

import (
	"github.com/hotpath/hotpath/core/plugin"
	"github.com/hotpath/hotpath/plugins/ct"
)

func main() { plugin.Serve(ct.New(plugin.Logger())) }
