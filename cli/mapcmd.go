package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hotpath/hotpath/supervisor"
)

func mapCommand() *cli.Command {
	return &cli.Command{
		Name:  "map",
		Usage: "shared maps: list them, resize one live",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "shared maps with their type, size and pin",
				Flags: []cli.Flag{outputFlag},
				Action: func(c *cli.Context) error {
					o, err := output(c)
					if err != nil {
						return err
					}
					var st supervisor.Status
					if err := newClient(c).do("GET", "/v1/status", nil, &st); err != nil {
						return err
					}
					if o == "json" {
						printJSON(os.Stdout, st.Maps)
						return nil
					}
					for _, m := range st.Maps {
						fmt.Printf("%-14s %-14s max_entries=%-9d id=%-6d %s\n", m.Name, m.Type, m.MaxEntries, m.ID, m.Pin)
					}
					return nil
				},
			},
			resizeCommand(),
		},
	}
}

func resizeCommand() *cli.Command {
	return &cli.Command{
		Name:      "resize",
		Usage:     "give a shared map another max_entries while traffic flows (entries and counters kept)",
		ArgsUsage: "NAME",
		Flags: []cli.Flag{
			&cli.Uint64Flag{Name: "max-entries", Required: true, Usage: "new size"},
			&cli.BoolFlag{Name: "dry-run", Usage: "say what would happen: entries, memory, time estimate"},
			outputFlag,
		},
		Action: func(c *cli.Context) error {
			o, err := output(c)
			if err != nil {
				return err
			}
			if c.NArg() != 1 {
				return fmt.Errorf("map resize: want exactly one map name")
			}
			n := c.Uint64("max-entries")
			if n == 0 || n > 1<<32-1 {
				return fmt.Errorf("map resize: --max-entries %d is out of range", n)
			}
			req := supervisor.ResizeRequest{MaxEntries: uint32(n), DryRun: c.Bool("dry-run")}
			var ans supervisor.ResizeAnswer
			cl := newClient(c)
			cl.http.Timeout = 10 * time.Minute
			err = cl.do("POST", "/v1/maps/"+c.Args().First()+"/resize", req, &ans)
			if o == "json" && ans.Result != nil {
				printJSON(os.Stdout, ans.Result)
			} else if ans.Result != nil && err == nil {
				printResize(ans.Result)
			}
			return err
		},
	}
}

func printResize(r *supervisor.ResizeResult) {
	if r.DryRun {
		fmt.Printf("map %s: %d -> %d entries (dry run): %d entries to copy, memory %s -> ~%s, ~%s, plugins reloading: %v\n",
			r.Map, r.From, r.To, r.Entries, mib(r.MemoryBefore), mib(r.MemoryAfter), r.Estimate.Round(time.Millisecond), r.Plugins)
		return
	}
	took, gen := time.Duration(0), uint32(0)
	copied, delta, merged := 0, 0, 0
	if rr := r.Remap; rr != nil {
		took, gen = rr.Took, rr.Generation
		for _, m := range rr.Maps {
			copied, delta, merged = m.Entries, m.Delta, m.Merged
		}
	}
	fmt.Printf("map %s: %d -> %d entries in %s: %d entries copied, %d carried over before the switch, %d merged after; memory %s -> %s; generation %d; plugins reloaded: %v\n",
		r.Map, r.From, r.To, took.Round(time.Millisecond), copied, delta, merged, mib(r.MemoryBefore), mib(r.MemoryAfter), gen, r.Plugins)
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
