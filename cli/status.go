package cli

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/hotpath/hotpath/supervisor"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show the supervisor, the active generation, plugins and maps",
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
				return printJSON(os.Stdout, st)
			}
			fmt.Printf("generation: %d (ABI %d)\nbpffs: %s\nstate dir: %s\ndevices: %s\nstarted: %s\n",
				st.ActiveGeneration, st.ABIVersion, st.BPFFS, st.StateDir, strings.Join(st.Devices, ", "), st.StartedAt.Format("2006-01-02 15:04:05"))
			a := st.Adopted
			fmt.Printf("adopted at start: generation %d, maps reopened %d, created %d, links reopened [%s], plugins reattached [%s], started [%s], programs reused [%s]\n\n",
				a.Generation, len(a.MapsReopened), len(a.MapsCreated), strings.Join(a.LinksReopened, " "),
				strings.Join(a.PluginsAdopted, " "), strings.Join(a.PluginsStarted, " "), strings.Join(a.ProgramsReused, " "))
			writePlugins(st.Plugins)
			writeCluster(st.Cluster)
			fmt.Println()
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "MAP\tID\tTYPE\tMAX ENTRIES")
			for _, m := range st.Maps {
				fmt.Fprintf(w, "%s\t%d\t%s\t%d\n", m.Name, m.ID, m.Type, m.MaxEntries)
			}
			return w.Flush()
		},
	}
}

// slotsWithHooks lists a plugin's slots, each with the hooks it claimed
// when not both: "lb(ingress),lb-revnat(egress)".
func slotsWithHooks(p supervisor.PluginStatus) string {
	out := make([]string, len(p.Slots))
	for i, s := range p.Slots {
		out[i] = s
		if h := p.Hooks[s]; len(h) > 0 {
			out[i] += "(" + strings.Join(h, "+") + ")"
		}
	}
	return strings.Join(out, ",")
}

func writePlugins(ps []supervisor.PluginStatus) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PLUGIN\tVERSION\tPROTOCOL\tPID\tRESTARTS\tHEALTHY\tGENERATION\tGC LEASE\tSLOTS")
	for _, p := range ps {
		health := fmt.Sprint(p.Healthy)
		if p.Reason != "" {
			health += " (" + p.Reason + ")"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\t%d\t%v\t%s\n", p.Name, p.Version, p.Protocol, p.Pid, p.Restarts, health, p.Generation, p.GCLease, slotsWithHooks(p))
	}
	w.Flush()
}

func pluginCommand() *cli.Command {
	return &cli.Command{
		Name:  "plugin",
		Usage: "list and restart plugins",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list plugins",
				Flags: []cli.Flag{outputFlag},
				Action: func(c *cli.Context) error {
					o, err := output(c)
					if err != nil {
						return err
					}
					var ps []supervisor.PluginStatus
					if err := newClient(c).do("GET", "/v1/plugins", nil, &ps); err != nil {
						return err
					}
					if o == "json" {
						return printJSON(os.Stdout, ps)
					}
					writePlugins(ps)
					return nil
				},
			},
			upgradeCommand(),
			invokeCommand(),
			{
				Name:      "restart",
				Usage:     "restart a plugin process; the datapath is untouched",
				ArgsUsage: "NAME",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return fmt.Errorf("plugin restart: want exactly one plugin name")
					}
					var ps []supervisor.PluginStatus
					if err := newClient(c).do("POST", "/v1/plugins/"+c.Args().First()+"/restart", nil, &ps); err != nil {
						return err
					}
					writePlugins(ps)
					return nil
				},
			},
		},
	}
}
