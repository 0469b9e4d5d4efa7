package cli

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/hotpath/hotpath/core/netpol"
)

var policyPluginFlag = &cli.StringFlag{Name: "plugin", Value: "policy", Usage: "name of the policy plugin in the supervisor config"}

// endpointCommand manages the pods the policy plugin knows: address,
// namespace and labels, from which identities are allocated.
func endpointCommand() *cli.Command {
	return &cli.Command{
		Name:  "endpoint",
		Usage: "pods of this node with their namespace and labels (through the policy plugin)",
		Flags: []cli.Flag{policyPluginFlag},
		Subcommands: []*cli.Command{
			{
				Name:      "add",
				Usage:     "add an endpoint, or replace its namespace and labels",
				ArgsUsage: "IP",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Value: "default", Usage: "Kubernetes namespace"},
					&cli.StringSliceFlag{Name: "label", Aliases: []string{"l"}, Usage: "k=v, repeat for more labels"},
				},
				Action: endpointAdd,
			},
			{
				Name:      "del",
				Usage:     "delete an endpoint",
				ArgsUsage: "IP",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return fmt.Errorf("endpoint del: want IP")
					}
					if err := newClient(c).invoke(c.String("plugin"), "endpoint-del", netpol.EndpointDelArgs{IP: c.Args().First()}, nil); err != nil {
						return err
					}
					fmt.Printf("endpoint %s deleted\n", c.Args().First())
					return nil
				},
			},
			{
				Name:   "list",
				Usage:  "list endpoints with identities and verdict counters",
				Flags:  []cli.Flag{outputFlag},
				Action: endpointList,
			},
		},
	}
}

func endpointAdd(c *cli.Context) error {
	if c.NArg() != 1 {
		return fmt.Errorf("endpoint add: want IP")
	}
	e := netpol.Endpoint{IP: c.Args().First(), Namespace: c.String("namespace"), Labels: map[string]string{}}
	for _, kv := range c.StringSlice("label") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("endpoint add: label %q: want k=v", kv)
		}
		e.Labels[k] = v
	}
	if err := e.Validate(); err != nil {
		return err
	}
	var out netpol.Endpoint
	if err := newClient(c).invoke(c.String("plugin"), "endpoint-add", e, &out); err != nil {
		return err
	}
	fmt.Printf("endpoint %s (id %d) in %s: identity %d\n", out.IP, out.ID, out.Namespace, out.Identity)
	return nil
}

func endpointList(c *cli.Context) error {
	o, err := output(c)
	if err != nil {
		return err
	}
	var eps []netpol.Endpoint
	if err := newClient(c).invoke(c.String("plugin"), "endpoint-list", nil, &eps); err != nil {
		return err
	}
	if eps == nil {
		eps = []netpol.Endpoint{}
	}
	if o == "json" {
		return printJSON(os.Stdout, eps)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tIP\tNAMESPACE\tIDENTITY\tLABELS\tALLOWED\tDENIED")
	for _, e := range eps {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%d\t%d\n", e.ID, e.IP, e.Namespace, e.Identity, labelList(e.Labels), e.Allowed, e.Denied)
	}
	return tw.Flush()
}

func labelList(l map[string]string) string {
	parts := make([]string, 0, len(l))
	for k, v := range l {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}
