package dptest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/plugintest/packet"
	"github.com/hotpath/hotpath/core/services"
	"github.com/hotpath/hotpath/internal/dptest"
	"github.com/hotpath/hotpath/plugins/lb"
)

// The services every fuzzed packet meets. The seed corpus
// (testdata/fuzz/FuzzPrivilegedPipeline, written by testdata/gencorpus.go)
// uses the same addresses.
var fuzzServices = []services.ServiceAddArgs{
	{VIP: "10.96.0.10:80/tcp", Backends: []services.BackendArg{{Address: "10.240.2.2:8080"}, {Address: "10.240.2.3:8080"}}},
	{VIP: "10.96.0.53:53/udp", Backends: []services.BackendArg{{Address: "10.240.2.9:5353"}}},
	{VIP: "10.96.0.99:80/tcp"}, // no backends
	{VIP: "10.96.0.98:53/udp"}, // no backends
}

var (
	fuzzClient = netip.MustParseAddrPort("10.240.1.2:40000")
	fuzzVIPTCP = netip.MustParseAddrPort("10.96.0.10:80")
	fuzzVIPUDP = netip.MustParseAddrPort("10.96.0.53:53")
)

// maxFrame keeps a frame within what BPF_PROG_TEST_RUN accepts for tc.
const maxFrame = 3000

// FuzzPrivilegedPipeline sends mutated frames through the whole pipeline of
// one generation (entry, lb stages, ct stage) with services configured, and
// checks after every frame what holds for any correct datapath, whatever it
// supports:
//   - the frame is counted exactly once, in its direction, and never as a
//     missed tail call, a missing context or a generation mismatch;
//   - a frame counted as a parse error or as not-IPv4, or one whose headers
//     are cut short, leaves both CT maps exactly as they were; one whose
//     headers are cut short is dropped; one passed as not-IPv4 leaves
//     unchanged;
//   - an address (outer, and inner of an ICMP error) that leaves changed was
//     a VIP turned into one of its backends or a backend turned into its VIP
//     (or the frame was answered: source and destination swapped);
//   - a frame whose checksums were right leaves with right checksums.
//
// With fix set, the frame's checksums are made right before it is sent, so
// that mutations also reach the paths of well-formed frames.
//
// Each frame starts from the same state: CT flushed, then a TCP and a UDP
// flow opened through the VIPs, so replies and ICMP errors find their flow.
func FuzzPrivilegedPipeline(f *testing.F) {
	h := dptest.New(f)
	cfg := lb.DefaultConfig()
	cfg.Algorithm = "maglev"
	cfg.MaglevSeed = 0x5eed1234
	h.Install(f, dptest.ServiceStages(f, h.Layout, cfg))
	maps, err := lb.OpenMaps(h.Layout)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(maps.Close)
	store := lb.NewStore(maps, cfg)
	nat := newNATRelation()
	for _, s := range fuzzServices {
		raw, _ := json.Marshal(s)
		if _, err := lb.Run(store, "service-add", raw); err != nil {
			f.Fatal(err)
		}
		vip, _ := services.ParseVIP(s.VIP)
		for _, b := range s.Backends {
			be, _ := b.Parse()
			nat.add(netip.AddrPortFrom(vip.Addr, vip.Port), be.Addr)
		}
	}

	f.Fuzz(func(t *testing.T, egress, fix bool, frame []byte) {
		if len(frame) > maxFrame {
			frame = frame[:maxFrame]
		}
		if fix {
			fixChecksums(frame)
		}
		dir := abi.AbiHpDirHP_DIR_INGRESS
		if egress {
			dir = abi.AbiHpDirHP_DIR_EGRESS
		}
		prime(t, h)
		ctBefore := dumpCT(t, h)
		ctAfter := ctBefore
		defer func() { clearCT(t, h, ctAfter) }()
		before := counters(t, h)
		in := append([]byte(nil), frame...)
		r, err := h.Run(dir, frame)
		if errors.Is(err, unix.EINVAL) && len(in) < 14+40 {
			// The kernel refuses a tc test run shorter than Ethernet
			// plus an IP header: nothing ran, nothing may have changed.
			if after := counters(t, h); after != before {
				t.Fatal("a refused test run was counted")
			}
			return
		}
		if err != nil {
			t.Fatalf("test run: %v", err)
		}
		after := counters(t, h)
		reason := countedOnce(t, before, after, dir)

		unchangedCT := reason == abi.AbiHpReasonHP_R_PARSE_ERROR || reason == abi.AbiHpReasonHP_R_PASS_OTHER
		if cut := truncated(in); cut != "" {
			// Dropped under some drop reason (parse_error today; a more
			// specific one is as good).
			if r.Code != 2 || reason == abi.AbiHpReasonHP_R_FORWARD || reason == abi.AbiHpReasonHP_R_PASS_OTHER {
				t.Errorf("frame with %s: tc verdict %d, counted as %s; want a drop", cut, r.Code, abi.ReasonName(reason))
			}
			unchangedCT = true
		}
		ctAfter = dumpCT(t, h)
		if unchangedCT {
			if diff := ctDiff(ctBefore, ctAfter); diff != "" {
				t.Errorf("frame counted as %s changed CT: %s", abi.ReasonName(reason), diff)
			}
		}
		if reason == abi.AbiHpReasonHP_R_PARSE_ERROR && r.Code != 2 {
			t.Errorf("parse error passed (tc verdict %d)", r.Code)
		}
		if reason == abi.AbiHpReasonHP_R_PASS_OTHER && r.Code != 2 && !bytes.Equal(r.Packet, in) {
			t.Errorf("frame passed as not IPv4 left changed:\n in  %x\n out %x", in, r.Packet)
		}
		if r.Code == 2 {
			return
		}
		if msg := nat.check(in, r.Packet); msg != "" {
			t.Errorf("%s\n in  %x\n out %x", msg, in, r.Packet)
		}
		if checksumsValid(in) && !checksumsValid(r.Packet) {
			t.Errorf("frame with valid checksums left with bad ones (reason %s)\n in  %x\n out %x", abi.ReasonName(reason), in, r.Packet)
		}
	})
}

// prime opens one TCP and one UDP flow through the VIPs. CT is empty.
func prime(t *testing.T, h *dptest.Harness) {
	t.Helper()
	for _, p := range [][]byte{
		packet.TCP(fuzzClient, fuzzVIPTCP, packet.SYN, nil),
		packet.UDP(fuzzClient, fuzzVIPUDP, []byte("query")),
	} {
		if r, err := h.Run(abi.AbiHpDirHP_DIR_INGRESS, p); err != nil || r.Code == 2 {
			t.Fatalf("priming flow: verdict %d, %v", r.Code, err)
		}
	}
}

// clearCT deletes the entries of s, the CT state after a frame, so the
// next frame starts from empty maps (cheaper than another full scan).
func clearCT(t *testing.T, h *dptest.Harness, s ctState) {
	t.Helper()
	for name, entries := range s {
		for k := range entries {
			if err := h.Maps.ByName[name].Delete(&k); err != nil {
				t.Fatalf("clear %s: %v", name, err)
			}
		}
	}
}

type ctState map[string]map[abi.CTTuple]abi.CTEntry

func dumpCT(t *testing.T, h *dptest.Harness) ctState {
	t.Helper()
	return ctState{abi.MapCT4: h.Dump(t, abi.MapCT4), abi.MapCTAny4: h.Dump(t, abi.MapCTAny4)}
}

// ctDiff describes the first difference between two CT states.
func ctDiff(a, b ctState) string {
	for name, am := range a {
		bm := b[name]
		for k, v := range bm {
			if old, ok := am[k]; !ok {
				return name + ": entry created for " + tupleString(k)
			} else if old != v {
				return name + ": entry changed for " + tupleString(k)
			}
		}
		for k := range am {
			if _, ok := bm[k]; !ok {
				return name + ": entry deleted for " + tupleString(k)
			}
		}
	}
	return ""
}

func tupleString(k abi.CTTuple) string {
	b, _ := json.Marshal(k)
	return string(b)
}

type counts [abi.Reasons][2]uint64

func counters(t *testing.T, h *dptest.Harness) counts {
	t.Helper()
	var c counts
	for r := range abi.Reasons {
		for d := range uint32(2) {
			c[r][d] = h.Metric(t, abi.Reason(r), abi.AbiHpDir(d)).Packets
		}
	}
	return c
}

// countedOnce checks that exactly one packet was counted, in dir, under a
// reason that is not a pipeline failure, and returns the reason.
func countedOnce(t *testing.T, before, after counts, dir abi.AbiHpDir) abi.Reason {
	t.Helper()
	var reason abi.Reason
	total := [2]uint64{}
	for r := range abi.Reasons {
		for d := range 2 {
			n := after[r][d] - before[r][d]
			total[d] += n
			if n > 0 && d == int(dir) {
				reason = abi.Reason(r)
			}
		}
	}
	if total[dir] != 1 || total[1-dir] != 0 {
		t.Fatalf("one frame in direction %d counted %d times there and %d in the other", dir, total[dir], total[1-dir])
	}
	switch reason {
	case abi.AbiHpReasonHP_R_MISSED_TAIL_CALL, abi.AbiHpReasonHP_R_NO_CONTEXT, abi.AbiHpReasonHP_R_GEN_MISMATCH:
		t.Fatalf("frame counted as %s", abi.ReasonName(reason))
	}
	return reason
}
