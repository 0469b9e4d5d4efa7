package cli

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/hotpath/hotpath/core/netpol"
)

// policyCommand applies, lists and deletes Kubernetes NetworkPolicies. Files
// are parsed and validated here with the same code the plugin uses, so a bad
// document is refused before anything is sent.
func policyCommand() *cli.Command {
	return &cli.Command{
		Name:  "policy",
		Usage: "Kubernetes NetworkPolicy (networking.k8s.io/v1), through the policy plugin",
		Flags: []cli.Flag{policyPluginFlag},
		Subcommands: []*cli.Command{
			{
				Name:  "apply",
				Usage: "add or replace the policies of a YAML file (one or many documents), all at once",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "filename", Aliases: []string{"f"}, Required: true, Usage: "YAML file, - for stdin"},
				},
				Action: policyApply,
			},
			{
				Name:      "delete",
				Usage:     "delete a policy",
				ArgsUsage: "NAMESPACE/NAME",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return fmt.Errorf("policy delete: want NAMESPACE/NAME")
					}
					ref, err := netpol.ParseRef(c.Args().First())
					if err != nil {
						return err
					}
					if err := newClient(c).invoke(c.String("plugin"), "policy-delete", ref, nil); err != nil {
						return err
					}
					fmt.Printf("networkpolicy %s/%s deleted\n", ref.Namespace, ref.Name)
					return nil
				},
			},
			{
				Name:   "list",
				Usage:  "list policies and the endpoints they select",
				Flags:  []cli.Flag{outputFlag},
				Action: policyList,
			},
		},
	}
}

func policyApply(c *cli.Context) error {
	if c.NArg() != 0 {
		return fmt.Errorf("policy apply: takes no arguments (use -f FILE)")
	}
	name := c.String("filename")
	in := os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("policy apply: %w", err)
		}
		defer f.Close()
		in = f
	}
	data, err := netpol.ReadAll(in)
	if err != nil {
		return fmt.Errorf("policy apply: read %s: %w", name, err)
	}
	nps, err := netpol.Parse(data)
	if err != nil {
		return fmt.Errorf("policy apply %s: %w (nothing applied)", name, err)
	}
	var res netpol.ApplyResult
	if err := newClient(c).invoke(c.String("plugin"), "policy-apply", netpol.ApplyArgs{Policies: nps}, &res); err != nil {
		return err
	}
	for _, ref := range res.Applied {
		fmt.Printf("networkpolicy %s applied\n", ref)
	}
	fmt.Printf("%d rule table entries, %d swap(s), %s\n", res.Entries, res.Swaps, res.Duration)
	return nil
}

func policyList(c *cli.Context) error {
	o, err := output(c)
	if err != nil {
		return err
	}
	var ps []netpol.PolicyInfo
	if err := newClient(c).invoke(c.String("plugin"), "policy-list", nil, &ps); err != nil {
		return err
	}
	if ps == nil {
		ps = []netpol.PolicyInfo{}
	}
	if o == "json" {
		return printJSON(os.Stdout, ps)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tNAME\tPOD-SELECTOR\tTYPES\tINGRESS\tEGRESS\tSELECTED")
	for _, p := range ps {
		sel := strings.Join(p.Selected, ",")
		if sel == "" {
			sel = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", p.Namespace, p.Name, p.PodSelector, strings.Join(p.PolicyTypes, ","), p.Ingress, p.Egress, sel)
	}
	return tw.Flush()
}
