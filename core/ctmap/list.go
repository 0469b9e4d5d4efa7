package ctmap

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
)

// Record is one CT entry as `hotpath ct list -o json` prints it. The field
// names are a contract with scripts outside the project.
type Record struct {
	Proto        string   `json:"proto"`
	Direction    string   `json:"direction"`
	Src          string   `json:"src"`
	Dst          string   `json:"dst"`
	Packets      uint64   `json:"packets"`
	Bytes        uint64   `json:"bytes"`
	Expires      int64    `json:"expires"` // seconds left
	Flags        []string `json:"flags"`
	RevNat       uint16   `json:"rev_nat"`
	BackendID    uint32   `json:"backend_id"`
	SourceID     uint32   `json:"source_identity"`
	TxFlagsSeen  uint8    `json:"tx_flags_seen"`
	RxFlagsSeen  uint8    `json:"rx_flags_seen"`
	LastTxReport uint32   `json:"last_tx_report"`
	LastRxReport uint32   `json:"last_rx_report"`
	Map          string   `json:"map"`
	// Layout 2 of the CT value only (see bpf/lib/abi.h); absent in layout 1.
	RxPackets uint64 `json:"rx_packets,omitempty"`
	RxBytes   uint64 `json:"rx_bytes,omitempty"`
	LastSeen  int64  `json:"last_seen,omitempty"` // seconds ago
	Layout    uint32 `json:"layout"`

	rawFlags uint32
}

var flagNames = []struct {
	bit  uint32
	name string
}{
	{abi.CTRxClosing, "RxClosing"}, {abi.CTTxClosing, "TxClosing"}, {abi.CTSeenNonSyn, "SeenNonSyn"},
	{abi.CTNodePort, "NodePort"}, {abi.CTDSR, "DSR"},
}

// NewRecord converts a map entry; now is the datapath clock in seconds.
func NewRecord(mapName string, k *abi.CTTuple, v *abi.CTEntry, now uint32) Record {
	r := Record{
		Proto: protoName(k.Nexthdr), Direction: direction(k.Flags),
		Src:     addrPort(k.Saddr, k.Sport).String(),
		Dst:     addrPort(k.Daddr, k.Dport).String(),
		Packets: v.Packets, Bytes: v.Bytes, Expires: int64(v.Lifetime) - int64(now),
		Flags: []string{}, RevNat: v.RevNatIndex, BackendID: v.BackendId, SourceID: v.SrcSecId,
		TxFlagsSeen: v.TxFlagsSeen, RxFlagsSeen: v.RxFlagsSeen,
		LastTxReport: v.LastTxReport, LastRxReport: v.LastRxReport, Map: mapName, rawFlags: v.Flags,
	}
	for _, f := range flagNames {
		if v.Flags&f.bit != 0 {
			r.Flags = append(r.Flags, f.name)
		}
	}
	return r
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

func direction(f uint8) string {
	switch {
	case f&abi.TupleService != 0:
		return "SVC"
	case f&abi.TupleIn != 0:
		return "IN"
	}
	return "OUT"
}

// addrPort converts a network-order address and port as the kernel stores them.
func addrPort(addr uint32, port uint16) netip.AddrPort {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], addr)
	return netip.AddrPortFrom(netip.AddrFrom4(b), port<<8|port>>8)
}

// Maps are the names of the maps the ct plugin owns the content of.
var Maps = []string{abi.MapCT4, abi.MapCTAny4}

// Open opens the pinned CT maps directly: listing works with no supervisor.
func Open(l pin.Layout) (map[string]*ebpf.Map, error) {
	out := map[string]*ebpf.Map{}
	for _, name := range Maps {
		m, err := ebpf.LoadPinnedMap(l.Map(name), nil)
		if err != nil {
			pin.CloseAll(out)
			return nil, fmt.Errorf("open ct map %s: %w", l.Map(name), err)
		}
		out[name] = m
	}
	return out, nil
}

// NewRecordOf converts an entry read from a map of the given layout.
func NewRecordOf(mapName string, layout uint32, k *abi.CTTuple, v *Entry, now uint32) Record {
	r := NewRecord(mapName, k, Common(v), now)
	r.Layout = layout
	if layout >= 2 {
		r.RxPackets, r.RxBytes = v.RxPackets, v.RxBytes
		if v.LastSeen != 0 {
			r.LastSeen = max(0, int64(now)-int64(v.LastSeen)) // the datapath may have moved on since now was read
		}
	}
	return r
}

// List reads every CT entry under l.
func List(l pin.Layout) ([]Record, error) {
	maps, err := Open(l)
	if err != nil {
		return nil, err
	}
	defer pin.CloseAll(maps)
	now := Now()
	recs := []Record{}
	for _, name := range Maps {
		layout, err := Layout(maps[name])
		if err != nil {
			return nil, err
		}
		err = ScanEntries(maps[name], func(k *abi.CTTuple, v *Entry) bool {
			recs = append(recs, NewRecordOf(name, layout, k, v, now))
			return true
		})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", name, err)
		}
	}
	sort.SliceStable(recs, func(i, j int) bool {
		a, b := recs[i], recs[j]
		if a.Proto != b.Proto {
			return a.Proto > b.Proto // TCP before UDP before ICMP, as Cilium
		}
		if a.Src != b.Src {
			return a.Src < b.Src
		}
		if a.Dst != b.Dst {
			return a.Dst < b.Dst
		}
		return a.Direction < b.Direction
	})
	return recs, nil
}

// Flush deletes every CT entry under l and returns how many it deleted.
func Flush(l pin.Layout) (int, error) {
	maps, err := Open(l)
	if err != nil {
		return 0, err
	}
	defer pin.CloseAll(maps)
	total := 0
	for _, name := range Maps {
		n, err := pin.DeleteAll[abi.CTTuple](maps[name])
		total += n
		if err != nil {
			return total, fmt.Errorf("flush %s: %w", name, err)
		}
	}
	return total, nil
}

// WriteTable prints records the way `cilium bpf ct list global` does.
func WriteTable(w io.Writer, recs []Record) error {
	for _, r := range recs {
		// Layout 2's fields go at the end: scripts that cut the columns
		// of layout 1 keep working.
		extra := ""
		if r.Layout >= 2 {
			extra = fmt.Sprintf(" RxPackets=%d RxBytes=%d LastSeen=%d", r.RxPackets, r.RxBytes, r.LastSeen)
		}
		_, err := fmt.Fprintf(w, "%s %s %s -> %s expires=%d Packets=%d Bytes=%d RxFlagsSeen=%#02x LastRxReport=%d TxFlagsSeen=%#02x LastTxReport=%d Flags=%#04x [ %s ] RevNAT=%d BackendID=%d SourceSecurityID=%d%s\n",
			r.Proto, r.Direction, r.Src, r.Dst, r.Expires, r.Packets, r.Bytes, r.RxFlagsSeen, r.LastRxReport,
			r.TxFlagsSeen, r.LastTxReport, r.rawFlags, strings.Join(r.Flags, " "), r.RevNat, r.BackendID, r.SourceID, extra)
		if err != nil {
			return err
		}
	}
	return nil
}
