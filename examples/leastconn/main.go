// Command hotpath-leastconn is a vendor plugin built outside the hotpath
// module: backend selection by least active connections.
package main

import (
	"example.com/leastconn/leastconn"

	"github.com/hotpath/hotpath/core/plugin"
)

func main() { plugin.Serve(leastconn.New(plugin.Logger())) }
