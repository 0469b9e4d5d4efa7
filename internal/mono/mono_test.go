package mono_test

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/plugintest"
	"github.com/hotpath/hotpath/core/plugintest/packet"
	"github.com/hotpath/hotpath/core/services"
	"github.com/hotpath/hotpath/internal/mono"
	"github.com/hotpath/hotpath/plugins/ct"
	"github.com/hotpath/hotpath/plugins/lb"
)

var (
	client  = netip.MustParseAddrPort("10.240.1.2:40000")
	vip     = netip.MustParseAddrPort("10.96.0.10:80")
	backend = netip.MustParseAddrPort("10.240.2.2:8080")
)

// TestPrivilegedMonoDoesThePipelinesWork: the monolithic program and the
// staged pipeline turn the same packets into the same packets and the same
// CT state, so comparing their ns/packet compares like with like.
func TestPrivilegedMonoDoesThePipelinesWork(t *testing.T) {
	h := plugintest.New(t)
	h.Install(t, serviceStages(t, h))
	maps, err := lb.OpenMaps(h.Layout)
	if err != nil {
		t.Fatal(err)
	}
	defer maps.Close()
	args, _ := json.Marshal(services.ServiceAddArgs{VIP: vip.String() + "/tcp", Algorithm: "maglev",
		Backends: []services.BackendArg{{Address: backend.String()}}})
	if _, err := lb.Run(lb.NewStore(maps, lb.DefaultConfig()), "service-add", args); err != nil {
		t.Fatal(err)
	}
	m, err := mono.Load(h.Maps)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	syn := packet.TCP(client, vip, packet.SYN, nil)
	synAck := packet.TCP(backend, client, packet.SYN|packet.ACK, nil)
	type outcome struct {
		out [][]byte
		ct  map[abi.CTTuple]abi.CTEntry
	}
	run := func(staged bool) outcome {
		var o outcome
		for _, step := range []struct {
			dir abi.AbiHpDir
			pkt []byte
		}{{abi.AbiHpDirHP_DIR_INGRESS, syn}, {abi.AbiHpDirHP_DIR_EGRESS, synAck}} {
			var out []byte
			if staged {
				r, err := h.Run(step.dir, step.pkt)
				if err != nil || r.Code != 0 {
					t.Fatalf("pipeline: %+v %v", r, err)
				}
				out = r.Packet
			} else {
				prog := m.Ingress
				if step.dir == abi.AbiHpDirHP_DIR_EGRESS {
					prog = m.Egress
				}
				buf := make([]byte, len(step.pkt)+256)
				opts := &ebpf.RunOptions{Data: step.pkt, DataOut: buf}
				if code, err := prog.Run(opts); err != nil || code != 0 {
					t.Fatalf("mono: %d %v", code, err)
				}
				out = opts.DataOut
			}
			o.out = append(o.out, append([]byte(nil), out...))
		}
		o.ct = h.Dump(t, abi.MapCT4)
		for k, v := range o.ct { // clocks differ between runs
			v.Lifetime, v.Created, v.LastRxReport, v.LastTxReport = 0, 0, 0, 0
			o.ct[k] = v
		}
		if _, err := ctmap.Flush(h.Layout); err != nil {
			t.Fatal(err)
		}
		return o
	}
	staged, monolithic := run(true), run(false)
	for i := range staged.out {
		if !bytes.Equal(staged.out[i], monolithic.out[i]) {
			t.Errorf("packet %d differs:\nstaged %x\nmono   %x", i, staged.out[i], monolithic.out[i])
		}
	}
	if src, dst := packet.Addrs(staged.out[0]); dst != backend || src != client {
		t.Errorf("staged SYN went %v -> %v", src, dst)
	}
	if src, _ := packet.Addrs(staged.out[1]); src != vip {
		t.Errorf("staged SYN-ACK comes from %v, want the VIP", src)
	}
	if len(staged.ct) != 2 || len(monolithic.ct) != len(staged.ct) {
		t.Fatalf("CT entries: staged %d, mono %d", len(staged.ct), len(monolithic.ct))
	}
	for k, v := range staged.ct {
		if monolithic.ct[k] != v {
			t.Errorf("CT entry %+v: staged %+v, mono %+v", k, v, monolithic.ct[k])
		}
	}
}

// serviceStages loads what the supervisor assembles from the lb and ct
// plugins for generation 1; the test releases them.
func serviceStages(t *testing.T, h *plugintest.Harness) map[abi.Slot]*ebpf.Program {
	st, err := lb.LoadStages(h.Layout, 1, lb.DefaultConfig(), lb.AllSlots)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	ctProg, _, err := ct.LoadStage(h.Layout, 1, ct.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctProg.Close() })
	progs := map[abi.Slot]*ebpf.Program{abi.AbiHpSlotHP_SLOT_CT: ctProg}
	for s, p := range st.Progs {
		progs[s] = p
	}
	return progs
}
