package cli

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/hotpath/hotpath/core/entry"
	"github.com/hotpath/hotpath/supervisor"
)

// forwardMeaning says in words what each forward stage counter counts
// (enum fwd_stat of bpf/entry.c).
var forwardMeaning = map[string]string{
	"peer":          "redirected straight into a pod (bpf_redirect_peer)",
	"neigh":         "redirected out of a device (bpf_redirect_neigh)",
	"not_forwarded": "left to the kernel: for this node",
	"stage":         "left as a stage sent it (it chose where it goes)",
	"turned":        "left to the kernel: a stage's answer, sent back",
	"off":           "left to the kernel: direct redirects off",
	"no_route":      "left to the kernel: no route (unreachable, blackhole, ...)",
	"no_neigh":      "left to the kernel: neighbour not resolved yet",
	"frag_needed":   "left to the kernel: too big for the next hop",
	"ttl":           "left to the kernel: TTL expires here",
	"unmanaged":     "left to the kernel: next hop on a device without hotpath",
	"egress_seen":   "passed at egress: already processed at ingress",
}

func datapathCommand() *cli.Command {
	return &cli.Command{
		Name:  "datapath",
		Usage: "how packets end their pass through this node",
		Subcommands: []*cli.Command{
			{
				Name:  "show",
				Usage: "direct redirects, remembered next hops and what the forward stage did",
				Flags: []cli.Flag{outputFlag},
				Action: func(c *cli.Context) error {
					o, err := output(c)
					if err != nil {
						return err
					}
					if c.NArg() > 0 {
						return fmt.Errorf("datapath show: takes no arguments, got %q", c.Args().Slice())
					}
					var st supervisor.DatapathStatus
					if err := newClient(c).do("GET", "/v1/datapath", nil, &st); err != nil {
						return err
					}
					if o == "json" {
						return printJSON(os.Stdout, st)
					}
					return printDatapath(st)
				},
			},
		},
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func printDatapath(st supervisor.DatapathStatus) error {
	fmt.Printf("direct redirects: %s", onOff(st.DirectRedirect))
	if st.DirectRedirect != st.Configured {
		fmt.Printf(" (configured %s)", onOff(st.Configured))
	}
	fmt.Printf("\nnext hops remembered: %d, %d usable now (remembering: %s)\n\n", st.NextHops, st.Usable, onOff(!st.HopsOff))
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "FORWARD STAGE\tPACKETS\tMEANING")
	for _, name := range entry.StatNames {
		if v, ok := st.Forward[name]; ok {
			fmt.Fprintf(w, "%s\t%d\t%s\n", name, v, forwardMeaning[name])
		}
	}
	return w.Flush()
}
