package cli

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

// invokeCommand routes any plugin command through the supervisor, so vendor
// plugins are driven without the CLI knowing them.
func invokeCommand() *cli.Command {
	return &cli.Command{
		Name:      "invoke",
		Usage:     "run a plugin-specific command (arguments as JSON) and print its JSON answer",
		ArgsUsage: "NAME COMMAND [ARGS-JSON]",
		Action: func(c *cli.Context) error {
			if c.NArg() < 2 || c.NArg() > 3 {
				return fmt.Errorf("plugin invoke: want NAME COMMAND [ARGS-JSON]")
			}
			var args json.RawMessage
			if c.NArg() == 3 {
				args = json.RawMessage(c.Args().Get(2))
				if !json.Valid(args) {
					return fmt.Errorf("plugin invoke: arguments %q are not valid JSON", c.Args().Get(2))
				}
			}
			var out json.RawMessage
			if err := newClient(c).invoke(c.Args().Get(0), c.Args().Get(1), args, &out); err != nil {
				return err
			}
			var v any
			if json.Unmarshal(out, &v) != nil {
				_, err := os.Stdout.Write(out)
				return err
			}
			return printJSON(os.Stdout, v)
		},
	}
}
