package plugintest_test

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/plugintest"
	"github.com/hotpath/hotpath/core/plugintest/packet"
	"github.com/hotpath/hotpath/plugins/ct"
)

var (
	src = netip.MustParseAddrPort("10.240.1.2:40000")
	dst = netip.MustParseAddrPort("10.240.2.2:80")
)

// TestPrivilegedHarnessGenerations: installed stages run, a slot declared
// for one hook is skipped at the other, an empty generation passes packets
// untouched, and Use flips back to an earlier generation.
func TestPrivilegedHarnessGenerations(t *testing.T) {
	h := plugintest.New(t)
	prog, _, err := ct.LoadStage(h.Layout, 1, ct.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	progs := map[abi.Slot]*ebpf.Program{abi.AbiHpSlotHP_SLOT_CT: prog}
	egressOnly := h.InstallHooks(t, progs, map[string][]string{"ct": {"egress"}})
	syn := packet.TCP(src, dst, packet.SYN, nil)
	if r, err := h.Run(plugintest.Ingress, syn); err != nil || r.Code != 0 {
		t.Fatalf("ingress: %+v %v", r, err)
	}
	if n := len(h.Dump(t, abi.MapCT4)); n != 0 {
		t.Fatalf("egress-only stage ran at ingress (%d entries)", n)
	}
	if _, err := h.Run(plugintest.Egress, syn); err != nil {
		t.Fatal(err)
	}
	if n := len(h.Dump(t, abi.MapCT4)); n != 1 {
		t.Fatalf("egress-only stage did not run at egress (%d entries)", n)
	}
	empty := h.Install(t, nil)
	if h.Gen() != empty || empty != egressOnly+1 {
		t.Fatalf("generations %d then %d, Gen %d", egressOnly, empty, h.Gen())
	}
	other := packet.TCP(netip.MustParseAddrPort("10.240.1.3:40000"), dst, packet.SYN, nil)
	r, err := h.Run(plugintest.Egress, other)
	if err != nil || r.Code != 0 || string(r.Packet) != string(other) {
		t.Fatalf("empty generation: %+v %v", r, err)
	}
	if n := len(h.Dump(t, abi.MapCT4)); n != 1 {
		t.Fatalf("empty generation ran the ct stage (%d entries)", n)
	}
	h.Use(egressOnly)
	if _, err := h.Run(plugintest.Egress, other); err != nil {
		t.Fatal(err)
	}
	if n := len(h.Dump(t, abi.MapCT4)); n != 2 {
		t.Fatalf("after Use the ct stage did not run (%d entries)", n)
	}
	if m := h.Metric(t, abi.AbiHpReasonHP_R_FORWARD, plugintest.Egress); m.Packets != 3 {
		t.Fatalf("forwarded at egress: %+v, want 3 packets", m)
	}
	if d := h.Drops(t); len(d) != 0 {
		t.Fatalf("drops %v", d)
	}
	badIHL := append([]byte(nil), syn...)
	badIHL[14] = 0x44 // IPv4 header length 16 bytes
	if _, err := h.Run(plugintest.Ingress, badIHL); err != nil {
		t.Fatal(err)
	}
	if d := h.Drops(t); d["parse_error"] != 1 {
		t.Fatalf("a malformed packet was not counted as a parse error: %v", d)
	}
}

// TestSDKOnly: the test package links only the SDK and the lab, so a plugin
// that uses it depends on nothing else of ours.
func TestSDKOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/hotpath/hotpath/core/plugintest").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		rest, ours := strings.CutPrefix(p, "github.com/hotpath/hotpath/")
		if ours && !strings.HasPrefix(rest, "core/") && rest != "lab" {
			t.Errorf("core/plugintest depends on %s", p)
		}
	}
}

// TestPrivilegedRunStage: one stage runs alone on the context Context
// builds, and RunStage returns what the stage left in it.
func TestPrivilegedRunStage(t *testing.T) {
	h := plugintest.New(t)
	prog, _, err := ct.LoadStage(h.Layout, 1, ct.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	syn := packet.TCP(src, dst, packet.SYN, nil)
	c := plugintest.Context(plugintest.Egress, syn)
	if c.Proto != 6 || c.TcpFlags != packet.SYN || c.L4Off != 34 || c.Sport != 40000>>8|40000&0xff<<8 {
		t.Fatalf("context of a SYN: %+v", c)
	}
	r, left, err := h.RunStage(prog, c, syn)
	if err != nil || r.Code != 0 {
		t.Fatalf("run: %+v %v", r, err)
	}
	if left.CtStatus != uint8(abi.AbiHpCtStatusHP_CT_NEW) {
		t.Fatalf("ct stage left status %d, want new", left.CtStatus)
	}
	if n := len(h.Dump(t, abi.MapCT4)); n != 1 {
		t.Fatalf("ct stage alone created %d entries, want 1", n)
	}
	if _, left, _ = h.RunStage(prog, c, syn); left.CtStatus != uint8(abi.AbiHpCtStatusHP_CT_ESTABLISHED) {
		t.Fatalf("second SYN of the flow: status %d, want established", left.CtStatus)
	}
}
