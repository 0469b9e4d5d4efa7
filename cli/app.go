// Package cli is the `hotpath` command line.
package cli

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/supervisor"
)

// Version of the hotpath binary; release builds set it with -ldflags -X.
var Version = "0.1.0"

// App builds the hotpath command.
func App() *cli.App {
	return &cli.App{
		Name:    "hotpath",
		Usage:   "plugin-modular eBPF datapath",
		Version: Version,
		// --plugin NAME=PATH,sha256=HEX carries a comma of its own.
		DisableSliceFlagSeparator: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "bpffs", Value: pin.DefaultRoot, Usage: "pin root on a bpf filesystem", EnvVars: []string{"HOTPATH_BPFFS"}},
			&cli.StringFlag{Name: "state-dir", Value: supervisor.DefaultStateDir, Usage: "supervisor state and control socket", EnvVars: []string{"HOTPATH_STATE_DIR"}},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "trace, debug, info, warn or error"},
		},
		Commands: []*cli.Command{
			supervisorCommand(),
			statusCommand(),
			pluginCommand(),
			ctCommand(),
			natCommand(),
			lbCommand(),
			endpointCommand(),
			tunnelCommand(),
			policyCommand(),
			monitorCommand(),
			clusterCommand(),
			mapCommand(),
			datapathCommand(),
		},
		ExitErrHandler: func(c *cli.Context, err error) {
			if err != nil {
				fmt.Fprintln(os.Stderr, "hotpath:", err)
				os.Exit(1)
			}
		},
	}
}

// Main runs the hotpath command with os.Args.
func Main() {
	app := App()
	if err := app.Run(interspersed(app, os.Args)); err != nil {
		fmt.Fprintln(os.Stderr, "hotpath:", err)
		os.Exit(1)
	}
}

// outputFlag is -o json|table, on every listing command.
var outputFlag = &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "json or table"}

func output(c *cli.Context) (string, error) {
	switch o := c.String("output"); o {
	case "json", "table":
		return o, nil
	default:
		return "", fmt.Errorf("output %q: want json or table", o)
	}
}

// global reads a global flag whether it was given before or after the
// subcommand name.
func global(c *cli.Context, name string) string {
	for _, l := range c.Lineage() {
		if l.IsSet(name) {
			return l.String(name)
		}
	}
	return c.String(name)
}
