package cli

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/pin"
)

func ctCommand() *cli.Command {
	return &cli.Command{
		Name:  "ct",
		Usage: "connection tracking table (reads the pinned maps; no supervisor needed)",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list CT entries",
				Flags: []cli.Flag{outputFlag},
				Action: func(c *cli.Context) error {
					o, err := output(c)
					if err != nil {
						return err
					}
					recs, err := ctmap.List(pin.Layout{Root: global(c, "bpffs")})
					if err != nil {
						return err
					}
					if o == "json" {
						return printJSON(os.Stdout, recs)
					}
					return ctmap.WriteTable(os.Stdout, recs)
				},
			},
			{
				Name:  "flush",
				Usage: "delete every CT entry",
				Action: func(c *cli.Context) error {
					n, err := ctmap.Flush(pin.Layout{Root: global(c, "bpffs")})
					if err != nil {
						return err
					}
					fmt.Printf("flushed %d entries\n", n)
					return nil
				},
			},
		},
	}
}
