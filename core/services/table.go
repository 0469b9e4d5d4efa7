package services

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable prints services the way `hotpath lb service list` shows them.
func WriteTable(w io.Writer, svcs []ServiceInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VIP\tID\tALGORITHM\tMAGLEV M\tAFFINITY\tBACKENDS")
	for _, s := range svcs {
		aff := "-"
		if s.AffinityTimeout > 0 {
			aff = fmt.Sprintf("%ds", s.AffinityTimeout)
		}
		var bs []string
		for _, b := range s.Backends {
			bs = append(bs, fmt.Sprintf("%s(w=%d)", b.Address, b.Weight))
		}
		if len(bs) == 0 {
			bs = []string{"(none: packets are dropped)"}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\n", s.VIP, s.ID, s.Algorithm, s.MaglevTableSize, aff, strings.Join(bs, " "))
	}
	return tw.Flush()
}
