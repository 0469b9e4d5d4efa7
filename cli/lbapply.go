package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/hotpath/hotpath/core/services"
)

// lbServiceApply adds many services from a JSON file in one command.
func lbServiceApply() *cli.Command {
	return &cli.Command{
		Name:      "apply",
		Usage:     "add the services of a JSON file (- for stdin): [{vip, backends: [{address, weight}], algorithm, maglev_table_size}]",
		ArgsUsage: "FILE",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("lb service apply: want one file (or -)")
			}
			var r io.Reader = os.Stdin
			if name := c.Args().First(); name != "-" {
				f, err := os.Open(name)
				if err != nil {
					return fmt.Errorf("lb service apply: %w", err)
				}
				defer f.Close()
				r = f
			}
			raw, err := io.ReadAll(r)
			if err != nil {
				return fmt.Errorf("lb service apply: %w", err)
			}
			var all []services.ServiceAddArgs
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&all); err != nil {
				return fmt.Errorf("lb service apply: %w", err)
			}
			for i, a := range all {
				if _, err := a.Spec(); err != nil {
					return fmt.Errorf("lb service apply: service %d: %w", i, err)
				}
			}
			var res services.ApplyResult
			cl := newClient(c)
			if err := cl.invoke(c.String("plugin"), "service-apply", all, &res); err != nil {
				return err
			}
			fmt.Printf("added %d services\n", res.Added)
			return nil
		},
	}
}
