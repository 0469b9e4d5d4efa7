// Command hotpath is the CLI and supervisor of the hotpath datapath.
package main

import "github.com/hotpath/hotpath/cli"

func main() { cli.Main() }
