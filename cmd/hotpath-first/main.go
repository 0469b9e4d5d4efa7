// Command hotpath-first is an example vendor plugin: backend selection that
// sends every new flow of a service to its first backend.
package main

import (
	"github.com/hotpath/hotpath/core/plugin"
	"github.com/hotpath/hotpath/plugins/first"
)

func main() { plugin.Serve(&first.Plugin{Log: plugin.Logger()}) }
