package monitor

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/hotpath/hotpath/core/abi"
)

func record(t *testing.T, r abi.AbiHpEvent) []byte {
	var b bytes.Buffer
	if err := binary.Write(&b, binary.NativeEndian, &r); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDecodeAndWrite(t *testing.T) {
	// 10.0.0.3:40000 -> 10.0.0.1:80 as the datapath stores them.
	r := abi.AbiHpEvent{
		Version: uint8(abi.AbiHpEventConstHP_EVENT_VERSION), Type: uint8(abi.AbiHpEventTypeHP_EV_DROP),
		Reason: uint8(abi.AbiHpReasonHP_R_POLICY_DENIED), Dir: 1, Slot: uint8(abi.AbiHpSlotHP_SLOT_POLICY), Proto: 6,
		Verdict: 1, CtStatus: 1, Ifindex: 5, Saddr: binary.NativeEndian.Uint32([]byte{10, 0, 0, 3}),
		Daddr: binary.NativeEndian.Uint32([]byte{10, 0, 0, 1}), Sport: binary.NativeEndian.Uint16([]byte{0x9c, 0x40}),
		Dport: binary.NativeEndian.Uint16([]byte{0, 80}), SrcId: 300, DstId: 301,
	}
	ev, err := Decode(record(t, r))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != "drop" || ev.Reason != "policy_denied" || ev.Stage != "policy" || ev.Src != "10.0.0.3:40000" ||
		ev.Dst != "10.0.0.1:80" || ev.Dir != "egress" || ev.CTStatus != "new" || ev.SrcIdentity != 300 {
		t.Fatalf("decoded %+v", ev)
	}
	var out bytes.Buffer
	Write(&out, ev)
	if s := out.String(); !strings.Contains(s, "xx drop (policy_denied) stage policy") || !strings.Contains(s, "identity 300->301: 10.0.0.3:40000 -> 10.0.0.1:80 tcp new") {
		t.Errorf("line %q", s)
	}
	r.Slot = uint8(abi.Slots)
	if ev, _ := Decode(record(t, r)); ev.Stage != "entry" {
		t.Errorf("slot HP_SLOTS: stage %q, want entry", ev.Stage)
	}
	r.Version = 9
	if _, err := Decode(record(t, r)); err == nil || !strings.Contains(err.Error(), "version 9") {
		t.Errorf("other layout version: %v", err)
	}
	if _, err := Decode(make([]byte, 4)); err == nil {
		t.Error("short record accepted")
	}
	if _, err := Flags([]string{"drop", "bogus"}); err == nil {
		t.Error("unknown type accepted")
	}
}
