// Package monitor decodes the datapath's events (struct hp_event, read from
// the events ring buffer) and renders them as `hotpath monitor` prints them,
// like `cilium monitor`: one line per event, or one JSON object per line.
package monitor

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"
	"unsafe"

	"github.com/hotpath/hotpath/core/abi"
)

// Types of events, as `--type` names them.
const (
	TypeDrop   = "drop"
	TypeTrace  = "trace"
	TypePolicy = "policy-verdict"
)

var typeNames = map[uint8]string{
	uint8(abi.AbiHpEventTypeHP_EV_DROP):   TypeDrop,
	uint8(abi.AbiHpEventTypeHP_EV_TRACE):  TypeTrace,
	uint8(abi.AbiHpEventTypeHP_EV_POLICY): TypePolicy,
}

// Flag is the hp_config.flags bit that turns events of type name on.
func Flag(name string) (uint32, error) {
	switch name {
	case TypeDrop:
		return uint32(abi.AbiHpMonitorFlagHP_MON_DROP), nil
	case TypeTrace:
		return uint32(abi.AbiHpMonitorFlagHP_MON_TRACE), nil
	case TypePolicy:
		return uint32(abi.AbiHpMonitorFlagHP_MON_POLICY), nil
	}
	return 0, fmt.Errorf("event type %q: want drop, trace or policy-verdict", name)
}

// Flags is the union of the bits of types; no type at all is every type.
func Flags(types []string) (uint32, error) {
	if len(types) == 0 {
		types = []string{TypeDrop, TypeTrace, TypePolicy}
	}
	var f uint32
	for _, t := range types {
		b, err := Flag(t)
		if err != nil {
			return 0, err
		}
		f |= b
	}
	return f, nil
}

// Event is one decoded event.
type Event struct {
	Time        time.Time `json:"time"`
	Type        string    `json:"type"`
	Stage       string    `json:"stage"`
	Reason      string    `json:"reason"`
	Verdict     string    `json:"verdict"`
	Ifindex     uint32    `json:"ifindex"`
	Interface   string    `json:"interface,omitempty"`
	Dir         string    `json:"dir"` // hook: ingress or egress
	Proto       string    `json:"proto"`
	Src         string    `json:"src"` // ip:port (ip for ICMP)
	Dst         string    `json:"dst"`
	SrcIdentity uint32    `json:"src_identity"`
	DstIdentity uint32    `json:"dst_identity"`
	CTStatus    string    `json:"ct_status"`
	Generation  uint32    `json:"generation"`
	Length      uint32    `json:"length"`
	MonoNs      uint64    `json:"mono_ns"` // CLOCK_MONOTONIC of the event
}

// Size is the size of one record.
const Size = int(unsafe.Sizeof(abi.AbiHpEvent{}))

// Decode parses one ring buffer record. A record of another layout version
// is an error naming both versions.
func Decode(b []byte) (Event, error) {
	if len(b) < Size {
		return Event{}, fmt.Errorf("event record of %d bytes, want %d", len(b), Size)
	}
	var r abi.AbiHpEvent
	if err := binary.Read(bytes.NewReader(b[:Size]), binary.NativeEndian, &r); err != nil {
		return Event{}, fmt.Errorf("decode event: %w", err)
	}
	if v := uint32(r.Version); v != uint32(abi.AbiHpEventConstHP_EVENT_VERSION) {
		return Event{}, fmt.Errorf("event layout version %d, this build reads %d", v, abi.AbiHpEventConstHP_EVENT_VERSION)
	}
	ev := Event{
		Type: typeName(r.Type), Stage: stageName(r.Slot), Reason: abi.ReasonName(abi.Reason(r.Reason)),
		Verdict: verdictName(r.Verdict), Ifindex: r.Ifindex, Dir: dirName(r.Dir), Proto: protoName(r.Proto),
		SrcIdentity: r.SrcId, DstIdentity: r.DstId, CTStatus: ctName(r.CtStatus),
		Generation: r.Gen, Length: r.Len, MonoNs: r.TsNs,
	}
	ev.Src, ev.Dst = endpoint(r.Saddr, r.Sport, r.Proto), endpoint(r.Daddr, r.Dport, r.Proto)
	return ev, nil
}

func typeName(t uint8) string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type-%d", t)
}

func stageName(s uint8) string {
	if uint32(s) >= abi.Slots {
		return "entry"
	}
	return abi.SlotName(abi.Slot(s))
}

func verdictName(v uint8) string {
	switch v {
	case uint8(abi.AbiHpVerdictHP_V_PASS):
		return "pass"
	case uint8(abi.AbiHpVerdictHP_V_DROP):
		return "drop"
	case uint8(abi.AbiHpVerdictHP_V_REDIRECT), uint8(abi.AbiHpVerdictHP_V_REDIRECT_PEER), uint8(abi.AbiHpVerdictHP_V_REDIRECT_NEIGH):
		return "redirect"
	}
	return fmt.Sprintf("verdict-%d", v)
}

func dirName(d uint8) string {
	if d == uint8(abi.AbiHpDirHP_DIR_EGRESS) {
		return "egress"
	}
	return "ingress"
}

func protoName(p uint8) string {
	switch p {
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 132:
		return "sctp"
	}
	return fmt.Sprintf("proto-%d", p)
}

func ctName(s uint8) string {
	switch s {
	case uint8(abi.AbiHpCtStatusHP_CT_NEW):
		return "new"
	case uint8(abi.AbiHpCtStatusHP_CT_ESTABLISHED):
		return "established"
	case uint8(abi.AbiHpCtStatusHP_CT_REPLY):
		return "reply"
	case uint8(abi.AbiHpCtStatusHP_CT_RELATED):
		return "related"
	}
	return "none"
}

// endpoint renders an address and port as the datapath stored them (network
// byte order in native-endian fields).
func endpoint(addr uint32, port uint16, proto uint8) string {
	var a [4]byte
	binary.NativeEndian.PutUint32(a[:], addr)
	ip := netip.AddrFrom4(a)
	if proto != 6 && proto != 17 && proto != 132 {
		return ip.String()
	}
	var p [2]byte
	binary.NativeEndian.PutUint16(p[:], port)
	return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(p[:])).String()
}

// Write prints ev as one line, in the spirit of cilium monitor:
//
//	15:04:05.000 xx drop (policy_denied) stage policy, ifindex 5 lxca egress, identity 300->301: 10.0.0.3:40000 -> 10.0.0.1:80 tcp new
func Write(w io.Writer, ev Event) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s ", ev.Time.Format("15:04:05.000"))
	switch ev.Type {
	case TypeDrop:
		fmt.Fprintf(&b, "xx drop (%s)", ev.Reason)
	case TypePolicy:
		v := "allowed"
		if ev.Verdict == "drop" {
			v = "denied"
		}
		fmt.Fprintf(&b, "policy-verdict %s", v)
	default:
		fmt.Fprintf(&b, "-> trace (%s)", ev.Reason)
	}
	fmt.Fprintf(&b, " stage %s, ifindex %d", ev.Stage, ev.Ifindex)
	if ev.Interface != "" {
		fmt.Fprintf(&b, " %s", ev.Interface)
	}
	fmt.Fprintf(&b, " %s", ev.Dir)
	if ev.SrcIdentity != 0 || ev.DstIdentity != 0 {
		fmt.Fprintf(&b, ", identity %d->%d", ev.SrcIdentity, ev.DstIdentity)
	}
	fmt.Fprintf(&b, ": %s -> %s %s %s\n", ev.Src, ev.Dst, ev.Proto, ev.CTStatus)
	_, err := io.WriteString(w, b.String())
	return err
}
