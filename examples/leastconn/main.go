// Command hotpath-leastconn is a vendor plugin built outside the hotpath
// module: backend selection by least active connections.
package main

import (
	"github.com/hotpath/hotpath/core/plugin"

	"example.com/leastconn/leastconn"
)

func main() { plugin.Serve(&leastconn.Plugin{Log: plugin.Logger()}) }
