package cli

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/hotpath/hotpath/core/natmap"
	"github.com/hotpath/hotpath/core/pin"
)

func natCommand() *cli.Command {
	return &cli.Command{
		Name:  "nat",
		Usage: "masquerade mappings (reads the pinned maps; no supervisor needed)",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list masqueraded flows: proto, src, dst, nat_src, expires",
				Flags: []cli.Flag{outputFlag},
				Action: func(c *cli.Context) error {
					o, err := output(c)
					if err != nil {
						return err
					}
					recs, err := natmap.List(pin.Layout{Root: global(c, "bpffs")})
					if err != nil {
						return err
					}
					if o == "json" {
						return printJSON(os.Stdout, recs)
					}
					return natmap.WriteTable(os.Stdout, recs)
				},
			},
			{
				Name:  "flush",
				Usage: "delete every mapping (flows still sending get new ports)",
				Action: func(c *cli.Context) error {
					n, err := natmap.Flush(pin.Layout{Root: global(c, "bpffs")})
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
