// Command hotpath-policy is the NetworkPolicy plugin.
package main

import (
	"github.com/hotpath/hotpath/core/plugin"
	"github.com/hotpath/hotpath/plugins/policy"
)

func main() { plugin.Serve(policy.New(plugin.Logger())) }
