// Command demo runs hotpath's demo: a lab of namespaces, the supervisor and
// its plugins, live traffic, crashes, swaps and upgrades (`make demo`). It is
// a binary of its own so that the product CLI links no lab and no test code.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/hotpath/hotpath/demo"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == demo.SockClientArg {
		if err := demo.SockClient(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	bin := flag.String("bin", "", "directory with hotpath and plugin binaries (default: next to this binary)")
	flag.Parse()
	if err := run(*bin); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(bin string) error {
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		bin = filepath.Dir(exe)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return demo.Run(ctx, demo.Options{Bin: bin, Out: os.Stdout})
}
