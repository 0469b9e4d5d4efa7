package cli

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/hotpath/hotpath/core/tunnels"
)

var tunnelPluginFlag = &cli.StringFlag{Name: "plugin", Value: "tunnel", Usage: "name of the tunnel plugin in the supervisor config"}

// tunnelCommand manages the overlay routes: which node owns a remote pod
// CIDR.
func tunnelCommand() *cli.Command {
	return &cli.Command{
		Name:  "tunnel",
		Usage: "routes of remote pod CIDRs through the VXLAN overlay (through the tunnel plugin)",
		Flags: []cli.Flag{tunnelPluginFlag},
		Subcommands: []*cli.Command{
			{
				Name:      "add",
				Usage:     "send a remote pod CIDR to the node that owns it, or change its node",
				ArgsUsage: "CIDR",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "remote", Usage: "underlay IPv4 address of the node owning CIDR (required)"},
					&cli.UintFlag{Name: "vni", Value: tunnels.DefaultVNI, Usage: "VXLAN network identifier"},
				},
				Action: tunnelAdd,
			},
			{
				Name:      "del",
				Usage:     "delete a route",
				ArgsUsage: "CIDR",
				Action:    tunnelDel,
			},
			{
				Name:   "list",
				Usage:  "list routes",
				Flags:  []cli.Flag{outputFlag},
				Action: tunnelList,
			},
		},
	}
}

func tunnelAdd(c *cli.Context) error {
	if c.NArg() != 1 {
		return fmt.Errorf("tunnel add: want CIDR --remote IP [--vni N]")
	}
	if c.Uint("vni") == 0 {
		return fmt.Errorf("tunnel add: vni 0: want 1..%d", tunnels.MaxVNI)
	}
	r := tunnels.Route{CIDR: c.Args().First(), Remote: c.String("remote"), VNI: uint32(c.Uint("vni"))}
	if c.Uint("vni") > tunnels.MaxVNI {
		return fmt.Errorf("tunnel add: vni %d: at most %d", c.Uint("vni"), tunnels.MaxVNI)
	}
	if _, _, err := r.Parse(); err != nil {
		return err
	}
	if err := newClient(c).invoke(c.String("plugin"), tunnels.CmdAdd, r, nil); err != nil {
		return err
	}
	fmt.Printf("tunnel %s via %s vni %d\n", r.CIDR, r.Remote, r.VNI)
	return nil
}

func tunnelDel(c *cli.Context) error {
	if c.NArg() != 1 {
		return fmt.Errorf("tunnel del: want CIDR")
	}
	p, err := tunnels.ParseCIDR(c.Args().First())
	if err != nil {
		return err
	}
	if err := newClient(c).invoke(c.String("plugin"), tunnels.CmdDel, tunnels.DelArgs{CIDR: p.String()}, nil); err != nil {
		return err
	}
	fmt.Printf("tunnel %s deleted\n", p)
	return nil
}

func tunnelList(c *cli.Context) error {
	o, err := output(c)
	if err != nil {
		return err
	}
	var rs []tunnels.Route
	if err := newClient(c).invoke(c.String("plugin"), tunnels.CmdList, nil, &rs); err != nil {
		return err
	}
	if rs == nil {
		rs = []tunnels.Route{}
	}
	if o == "json" {
		return printJSON(os.Stdout, rs)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CIDR\tREMOTE\tVNI")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%d\n", r.CIDR, r.Remote, r.VNI)
	}
	return tw.Flush()
}
