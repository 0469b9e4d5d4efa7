package natmap

import (
	"fmt"
	"io"
	"sort"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/pin"
)

// Record is one masqueraded flow as `hotpath nat list -o json` prints it.
// The field names are a contract with scripts outside the project.
type Record struct {
	Proto   string `json:"proto"`
	Src     string `json:"src"`     // the pod's address and port (ICMP: echo identifier)
	Dst     string `json:"dst"`     // the remote address and port
	NatSrc  string `json:"nat_src"` // the address and port the flow leaves the node with
	Expires int64  `json:"expires"` // seconds left of the flow's CT entry; negative: expired or gone
}

func protoName(p uint8) string {
	switch p {
	case 6:
		return "TCP"
	case 17:
		return "UDP"
	case 1:
		return "ICMP"
	}
	return fmt.Sprintf("PROTO%d", p)
}

// List reads every mapping under l, one record per flow (its egress entry).
func List(l pin.Layout) ([]Record, error) {
	m, err := Open(l)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	ct, err := OpenCT(l)
	if err != nil {
		return nil, err
	}
	defer ct.Close()
	now := ctmap.Now()
	recs := []Record{}
	err = Scan(m, func(k *abi.NAT4Key, v *abi.NAT4Entry) bool {
		if k.Dir != abi.NATEgress {
			return true
		}
		f := FlowOf(k, v)
		exp := int64(-1)
		if life, ok := ct.Lifetime(f); ok {
			exp = int64(life) - int64(now)
		}
		recs = append(recs, Record{
			Proto:   protoName(k.Nexthdr),
			Src:     AddrPort(f.Pod, f.PodPort).String(),
			Dst:     AddrPort(f.Remote, f.RemotePort).String(),
			NatSrc:  AddrPort(v.Addr, v.Port).String(),
			Expires: exp,
		})
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", abi.MapNAT4, err)
	}
	sort.SliceStable(recs, func(i, j int) bool {
		a, b := recs[i], recs[j]
		if a.Proto != b.Proto {
			return a.Proto > b.Proto
		}
		if a.Src != b.Src {
			return a.Src < b.Src
		}
		return a.Dst < b.Dst
	})
	return recs, nil
}

// Flush deletes every mapping under l and returns how many entries it
// deleted. Flows that still send get new ports; their replies in flight
// until then are not translated.
func Flush(l pin.Layout) (int, error) {
	m, err := Open(l)
	if err != nil {
		return 0, err
	}
	defer m.Close()
	n, err := pin.DeleteAll[abi.NAT4Key](m)
	if err != nil {
		return n, fmt.Errorf("flush %s: %w", abi.MapNAT4, err)
	}
	return n, nil
}

// WriteTable prints one line per flow.
func WriteTable(w io.Writer, recs []Record) error {
	for _, r := range recs {
		if _, err := fmt.Fprintf(w, "%s %s -> %s via %s expires=%d\n", r.Proto, r.Src, r.Dst, r.NatSrc, r.Expires); err != nil {
			return err
		}
	}
	return nil
}
