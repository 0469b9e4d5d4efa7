package cli

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/hotpath/hotpath/demo"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "run a lab of namespaces with live traffic, crashes and swaps (needs root)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "bin", Usage: "directory with hotpath and plugin binaries (default: next to this binary)"},
		},
		Action: func(c *cli.Context) error {
			bin := c.String("bin")
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
		},
	}
}
