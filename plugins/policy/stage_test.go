package policy

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/monitor"
	"github.com/hotpath/hotpath/core/netpol"
	"github.com/hotpath/hotpath/core/plugintest"
	"github.com/hotpath/hotpath/core/plugintest/packet"
)

const stagePolicy = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: a}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from:
    - podSelector: {matchLabels: {app: cli}}
    ports: [{port: 79, endPort: 80}]
  - from:
    - ipBlock: {cidr: 192.168.0.0/16, except: [192.168.1.0/24]}
    ports: [{protocol: UDP}]
`

type stageEnv struct {
	h     *plugintest.Harness
	prog  *ebpf.Program
	store *Store
}

func newStageEnv(t *testing.T) *stageEnv {
	t.Helper()
	h := plugintest.New(t)
	prog, _, err := LoadStage(h.Layout, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	maps, err := OpenMaps(h.Layout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(maps.Close)
	st, err := OpenStore(maps, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []netpol.Endpoint{
		{IP: "10.0.0.1", Namespace: "a", Labels: map[string]string{"app": "web"}},
		{IP: "10.0.0.2", Namespace: "a", Labels: map[string]string{"app": "cli"}},
		{IP: "10.0.0.3", Namespace: "b", Labels: map[string]string{"app": "cli"}},
	} {
		if _, err := st.AddEndpoint(e); err != nil {
			t.Fatal(err)
		}
	}
	nps, err := netpol.Parse([]byte(stagePolicy))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(nps); err != nil {
		t.Fatal(err)
	}
	return &stageEnv{h: h, prog: prog, store: st}
}

// TestPrivilegedStageVerdicts: port range edges, namespaces, ipBlock with
// except, CT states, and the hook that decides which policy applies.
func TestPrivilegedStageVerdicts(t *testing.T) {
	e := newStageEnv(t)
	web := netip.MustParseAddr("10.0.0.1")
	ap := netip.AddrPortFrom
	ct := func(s abi.AbiHpCtStatus) uint8 { return uint8(s) }
	cases := []struct {
		name   string
		dir    abi.AbiHpDir
		pkt    []byte
		status uint8
		pass   bool
	}{
		{"same ns cli to 80", plugintest.Egress, packet.TCP(ap(netip.MustParseAddr("10.0.0.2"), 40000), ap(web, 80), 0x02, nil), ct(abi.AbiHpCtStatusHP_CT_NEW), true},
		{"range start 79", plugintest.Egress, packet.TCP(ap(netip.MustParseAddr("10.0.0.2"), 40000), ap(web, 79), 0x02, nil), ct(abi.AbiHpCtStatusHP_CT_NEW), true},
		{"below range 78", plugintest.Egress, packet.TCP(ap(netip.MustParseAddr("10.0.0.2"), 40000), ap(web, 78), 0x02, nil), ct(abi.AbiHpCtStatusHP_CT_NEW), false},
		{"above range 81", plugintest.Egress, packet.TCP(ap(netip.MustParseAddr("10.0.0.2"), 40000), ap(web, 81), 0x02, nil), ct(abi.AbiHpCtStatusHP_CT_NEW), false},
		{"udp to 80 not tcp", plugintest.Egress, packet.UDP(ap(netip.MustParseAddr("10.0.0.2"), 40000), ap(web, 80), nil), ct(abi.AbiHpCtStatusHP_CT_NEW), false},
		{"other ns cli", plugintest.Egress, packet.TCP(ap(netip.MustParseAddr("10.0.0.3"), 40000), ap(web, 80), 0x02, nil), ct(abi.AbiHpCtStatusHP_CT_NEW), false},
		{"other ns established", plugintest.Egress, packet.TCP(ap(netip.MustParseAddr("10.0.0.3"), 40000), ap(web, 80), 0x10, nil), ct(abi.AbiHpCtStatusHP_CT_ESTABLISHED), false},
		{"other ns reply passes", plugintest.Egress, packet.TCP(ap(netip.MustParseAddr("10.0.0.3"), 40000), ap(web, 80), 0x10, nil), ct(abi.AbiHpCtStatusHP_CT_REPLY), true},
		{"other ns related passes", plugintest.Egress, packet.ICMPEcho(netip.MustParseAddr("10.0.0.3"), web, false, 1, 1), ct(abi.AbiHpCtStatusHP_CT_RELATED), true},
		{"icmp echo denied", plugintest.Egress, packet.ICMPEcho(netip.MustParseAddr("10.0.0.2"), web, false, 1, 1), ct(abi.AbiHpCtStatusHP_CT_NEW), false},
		{"ipblock udp", plugintest.Egress, packet.UDP(ap(netip.MustParseAddr("192.168.5.5"), 5000), ap(web, 53), nil), ct(abi.AbiHpCtStatusHP_CT_NEW), true},
		{"ipblock except", plugintest.Egress, packet.UDP(ap(netip.MustParseAddr("192.168.1.5"), 5000), ap(web, 53), nil), ct(abi.AbiHpCtStatusHP_CT_NEW), false},
		{"outside ipblock", plugintest.Egress, packet.UDP(ap(netip.MustParseAddr("172.16.0.1"), 5000), ap(web, 53), nil), ct(abi.AbiHpCtStatusHP_CT_NEW), false},
		{"web egress unselected", plugintest.Ingress, packet.TCP(ap(web, 40000), ap(netip.MustParseAddr("10.0.0.3"), 9999), 0x02, nil), ct(abi.AbiHpCtStatusHP_CT_NEW), true},
		{"cli ingress unselected", plugintest.Egress, packet.TCP(ap(web, 40000), ap(netip.MustParseAddr("10.0.0.3"), 9999), 0x02, nil), ct(abi.AbiHpCtStatusHP_CT_NEW), true},
		{"not an endpoint of this node", plugintest.Egress, packet.TCP(ap(web, 40000), ap(netip.MustParseAddr("10.9.9.9"), 9999), 0x02, nil), ct(abi.AbiHpCtStatusHP_CT_NEW), true},
	}
	for _, c := range cases {
		ctx := plugintest.Context(c.dir, c.pkt)
		ctx.CtStatus = c.status
		res, left, err := e.h.RunStage(e.prog, ctx, c.pkt)
		if err != nil {
			t.Fatal(err)
		}
		pass := res.Code == 0
		if pass != c.pass {
			t.Errorf("%s: passed=%v (code %d, reason %d), want %v", c.name, pass, res.Code, left.Reason, c.pass)
		}
		if !c.pass && left.Reason != uint8(abi.AbiHpReasonHP_R_POLICY_DENIED) {
			t.Errorf("%s: reason %d, want policy_denied", c.name, left.Reason)
		}
	}
	eps, err := e.store.Endpoints()
	if err != nil {
		t.Fatal(err)
	}
	if eps[0].IP != "10.0.0.1" || eps[0].Allowed != 3 || eps[0].Denied != 8 {
		t.Errorf("web verdict counters: %+v, want 3 allowed, 8 denied", eps[0])
	}
}

func setFlags(t *testing.T, h *plugintest.Harness, flags uint32) {
	t.Helper()
	var cfg abi.Config
	if err := h.Maps[abi.MapConfig].Lookup(uint32(0), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Flags = flags
	if err := h.Maps[abi.MapConfig].Put(uint32(0), &cfg); err != nil {
		t.Fatal(err)
	}
}

// TestPrivilegedMonitorEvents: with the drop and policy bits set, a denied
// packet run through the whole pipeline leaves a policy verdict and a drop
// event naming the stage, reason, tuple and both identities; with no bit set
// it leaves nothing in the ring buffer.
func TestPrivilegedMonitorEvents(t *testing.T) {
	e := newStageEnv(t)
	e.h.Install(t, map[abi.Slot]*ebpf.Program{abi.AbiHpSlotHP_SLOT_POLICY: e.prog})
	rd, err := ringbuf.NewReader(e.h.Maps[abi.MapEvents])
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	src, dst := netip.MustParseAddrPort("10.0.0.3:40000"), netip.MustParseAddrPort("10.0.0.1:80")
	pkt := packet.TCP(src, dst, 0x02, nil)

	setFlags(t, e.h, 0)
	if res, err := e.h.Run(plugintest.Egress, pkt); err != nil || res.Code != 2 {
		t.Fatalf("denied packet: code %d, %v", res.Code, err)
	}
	rd.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if rec, err := rd.Read(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("event with no monitor attached: %d bytes, %v", len(rec.RawSample), err)
	}

	setFlags(t, e.h, uint32(abi.AbiHpMonitorFlagHP_MON_DROP|abi.AbiHpMonitorFlagHP_MON_POLICY))
	if res, err := e.h.Run(plugintest.Egress, pkt); err != nil || res.Code != 2 {
		t.Fatalf("denied packet: code %d, %v", res.Code, err)
	}
	eps, err := e.store.Endpoints()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]uint32{}
	for _, ep := range eps {
		ids[ep.IP] = ep.Identity
	}
	var got []monitor.Event
	rd.SetDeadline(time.Now().Add(time.Second))
	for len(got) < 2 {
		rec, err := rd.Read()
		if err != nil {
			t.Fatalf("read event %d: %v", len(got)+1, err)
		}
		ev, err := monitor.Decode(rec.RawSample)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev)
	}
	// A drop of another stage, here the entry program's parse error, is
	// reported too, with the stage that decided it.
	trunc := pkt[:14+20+8] // TCP header cut short
	if res, err := e.h.Run(plugintest.Ingress, trunc); err != nil || res.Code != 2 {
		t.Fatalf("truncated packet: code %d, %v", res.Code, err)
	}
	rec, err := rd.Read()
	if err != nil {
		t.Fatalf("read parse error event: %v", err)
	}
	if ev, err := monitor.Decode(rec.RawSample); err != nil || ev.Type != "drop" || ev.Reason != "parse_error" || ev.Stage != "entry" || ev.Dir != "ingress" {
		t.Errorf("parse error event: %+v %v, want a drop (parse_error) at stage entry, ingress", ev, err)
	}
	// Trace: a packet that passes, reported only while the trace bit is set.
	setFlags(t, e.h, uint32(abi.AbiHpMonitorFlagHP_MON_TRACE))
	ok := packet.TCP(netip.MustParseAddrPort("10.0.0.2:40000"), dst, 0x02, nil)
	if res, err := e.h.Run(plugintest.Egress, ok); err != nil || res.Code != 0 {
		t.Fatalf("allowed packet: code %d, %v", res.Code, err)
	}
	rec, err = rd.Read()
	if err != nil {
		t.Fatalf("read trace event: %v", err)
	}
	if ev, err := monitor.Decode(rec.RawSample); err != nil || ev.Type != "trace" || ev.Reason != "forward" || ev.Verdict != "pass" || ev.Src != "10.0.0.2:40000" || ev.DstIdentity != ids["10.0.0.1"] {
		t.Errorf("trace event: %+v %v, want a pass (forward) 10.0.0.2:40000 -> web", ev, err)
	}
	for i, want := range []string{"policy-verdict", "drop"} {
		ev := got[i]
		if ev.Type != want || ev.Reason != "policy_denied" || ev.Stage != "policy" || ev.Verdict != "drop" ||
			ev.Src != src.String() || ev.Dst != dst.String() || ev.Proto != "tcp" || ev.Dir != "egress" ||
			ev.SrcIdentity != ids["10.0.0.3"] || ev.DstIdentity != ids["10.0.0.1"] {
			t.Errorf("event %d: %+v, want %s policy_denied at stage policy, %s -> %s, identities %d -> %d",
				i, ev, want, src, dst, ids["10.0.0.3"], ids["10.0.0.1"])
		}
	}
}

// TestPrivilegedIPCacheKeepsForeignEntries: reconciling the ipcache deletes
// the plugin's stale entries, never another plugin's.
func TestPrivilegedIPCacheKeepsForeignEntries(t *testing.T) {
	e := newStageEnv(t)
	ipc := e.h.Maps[abi.AbiMapIpcache]
	foreign := ipKey(netip.MustParsePrefix("172.30.0.0/16"))
	if err := ipc.Put(foreign, abi.AbiHpIpcacheVal{SecId: 77, CidrId: 77}); err != nil {
		t.Fatal(err)
	}
	web := ipKey(netip.MustParsePrefix("192.168.1.0/24")) // an except of stagePolicy
	if err := e.store.Delete(netpol.DeleteArgs{Namespace: "a", Name: "web"}); err != nil {
		t.Fatal(err)
	}
	var v abi.AbiHpIpcacheVal
	if err := ipc.Lookup(foreign, &v); err != nil || v.SecId != 77 {
		t.Errorf("foreign entry after a reconcile: %+v, %v", v, err)
	}
	if err := ipc.Lookup(web, &v); !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Errorf("prefix of a deleted policy still in the ipcache: %+v, %v", v, err)
	}
}

// TestPrivilegedLostStateKeepsRules: a writer without the state file (state
// dir lost or changed) refuses to start rather than reconcile the maps to
// nothing; the rules stay in force.
func TestPrivilegedLostStateKeepsRules(t *testing.T) {
	e := newStageEnv(t)
	maps, err := OpenMaps(e.h.Layout)
	if err != nil {
		t.Fatal(err)
	}
	defer maps.Close()
	before, err := maps.installedRules()
	if err != nil || len(before) == 0 {
		t.Fatalf("rules installed: %d, %v", len(before), err)
	}
	if _, err := OpenStore(maps, t.TempDir()); err == nil || !strings.Contains(err.Error(), "no state") {
		t.Fatalf("store over an empty state dir: %v, want a refusal", err)
	}
	after, err := maps.installedRules()
	if err != nil || len(after) != len(before) {
		t.Errorf("rules after the refusal: %d (%v), want %d", len(after), err, len(before))
	}
}
