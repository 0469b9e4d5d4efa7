package bench

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/plugintest/packet"
	"github.com/hotpath/hotpath/plugins/ct"
)

const (
	// dpRepeat is the BPF_PROG_TEST_RUN repeat count of the steady-state
	// rows: ~0.1 s per run at ~100 ns/packet, long enough that the timer
	// and interrupts vanish in the mean.
	dpRepeat = 1_000_000
	// dpFlows is how many distinct tuples a first-packet row sends, one
	// test run (Repeat=1) each.
	dpFlows = 20_000
	// payload10 makes every packet 64 bytes: 14 Ethernet + 20 IPv4 + 20 TCP.
	payload10 = 10
)

var (
	dpClient = netip.MustParseAddrPort("10.240.1.2:40000")
	dpServer = netip.MustParseAddrPort("10.240.2.2:80")
)

// dpFlowPackets returns n distinct SYNs to dst and the matching second
// packets (ACK with data) of the same tuples, 64 bytes each.
func dpFlowPackets(n int, dst netip.AddrPort) (syns, acks [][]byte) {
	payload := make([]byte, payload10)
	for i := range n {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), uint16(10000+i%50000))
		syns = append(syns, packet.TCP(src, dst, packet.SYN, payload))
		acks = append(acks, packet.TCP(src, dst, packet.ACK|packet.PSH, payload))
	}
	return syns, acks
}

func datapathSuite(c *Context) ([]Row, error) {
	h, err := newDPHarness()
	if err != nil {
		return nil, err
	}
	defer h.close()
	prog, _, err := ct.LoadStage(h.layout, 2, ct.DefaultConfig())
	if err != nil {
		return nil, err
	}
	defer prog.Close()
	genEntry, err := h.install(nil)
	if err != nil {
		return nil, err
	}
	genCT, err := h.install(map[abi.Slot]*ebpf.Program{abi.AbiHpSlotHP_SLOT_CT: prog})
	if err != nil {
		return nil, err
	}

	est := packet.TCP(dpClient, dpServer, packet.ACK|packet.PSH, make([]byte, payload10))
	syns, acks := dpFlowPackets(dpFlows, dpServer)
	ct4 := h.maps.ByName[abi.MapCT4]
	var entry, ctEst, entry1, ctNew, ctEst1 []float64
	var newP50, newP99, newMax []float64 // per-packet distribution of the new-flow pass
	for run := range c.Runs {
		c.Logf("datapath run %d/%d", run+1, c.Runs)
		// Steady state: the same packet Repeat times; with the ct stage the
		// first run creates the entry and every later one finds it.
		h.use(genEntry)
		d, err := h.bench(est, dpRepeat)
		if err != nil {
			return nil, fmt.Errorf("entry only: %w", err)
		}
		entry = append(entry, ns(d))
		h.use(genCT)
		if _, err := h.bench(est, 1); err != nil { // create the entry
			return nil, fmt.Errorf("entry + ct: %w", err)
		}
		if d, err = h.bench(est, dpRepeat); err != nil {
			return nil, fmt.Errorf("entry + ct: %w", err)
		}
		ctEst = append(ctEst, ns(d))

		// First packets: Repeat reruns one packet, so a new flow can only
		// be measured once per tuple; the kernel times each single run.
		h.use(genEntry)
		m, err := meanFirst(h.bench, syns)
		if err != nil {
			return nil, fmt.Errorf("entry only, first packets: %w", err)
		}
		entry1 = append(entry1, m)
		h.use(genCT)
		if err := clearMap(ct4); err != nil {
			return nil, err
		}
		st, err := firstPass(h.bench, syns)
		if err != nil {
			return nil, fmt.Errorf("entry + ct, new flows: %w", err)
		}
		ctNew = append(ctNew, st.mean)
		newP50, newP99, newMax = append(newP50, st.p50), append(newP99, st.p99), append(newMax, st.max)
		// Each SYN must have created its own entry, or the row did not
		// measure new flows.
		if n, err := countEntries(ct4); err != nil || n != len(syns) {
			return nil, fmt.Errorf("after %d new flows the CT map holds %d entries (%v)", len(syns), n, err)
		}
		if m, err = meanFirst(h.bench, acks); err != nil {
			return nil, fmt.Errorf("entry + ct, second packets: %w", err)
		}
		ctEst1 = append(ctEst1, m)
	}
	rep := fmt.Sprintf("Repeat=%d", dpRepeat)
	flows := fmt.Sprintf("%d distinct tuples, Repeat=1 each, kernel-timed, mean", dpFlows)
	rows := []Row{
		{Name: "entry program alone (generation with no stages), 64 B TCP, " + rep, Unit: UnitNs, Samples: entry},
		{Name: "entry + ct stage, established flow (entry pre-created), 64 B TCP, " + rep, Unit: UnitNs, Samples: ctEst,
			BaseName: "entry alone, same run", Base: entry},
		{Name: "ct stage alone, established = (entry + ct) − entry, paired per run", Unit: UnitNs, Samples: diff(ctEst, entry)},
		{Name: "entry program alone, first packet of " + flows + " (floor of the Repeat=1 method)", Unit: UnitNs, Samples: entry1},
		{Name: "entry + ct stage, NEW flow: SYN of " + flows + " (CT map emptied before each run)", Unit: UnitNs, Samples: ctNew,
			BaseName: "second packet (ACK) of the same tuples, established, same method", Base: ctEst1,
			Note: fmt.Sprintf("per packet, median over runs: p50 %.0f ns, p99 %.0f ns, max %.1f µs (the mean includes these rare slow creates)",
				Median(newP50), Median(newP99), Median(newMax)/1000)},
		{Name: "ct stage alone, new flow = (entry + ct, SYN) − (entry alone), Repeat=1 method, paired per run", Unit: UnitNs, Samples: diff(ctNew, entry1)},
		{Name: "ct stage alone, established over 20000 flows = (entry + ct, ACK) − (entry alone), Repeat=1 method, paired per run", Unit: UnitNs, Samples: diff(ctEst1, entry1)},
	}
	lbRows, err := lbPipelineRows(c, h, prog, genCT)
	if err != nil {
		return rows, fmt.Errorf("lb pipeline rows: %w", err)
	}
	return append(rows, lbRows...), nil
}

// firstStats summarises one pass of meanFirst, in ns.
type firstStats struct{ mean, p50, p99, max float64 }

// meanFirst runs every packet once (Repeat=1) and returns the mean of the
// kernel-measured run times in ns, the row's value: the mean keeps the rare
// expensive packets (an LRU free-list refill costs tens of µs) that a
// median would hide. The percentiles go into the row's note.
func meanFirst(run runner, pkts [][]byte) (float64, error) {
	st, err := firstPass(run, pkts)
	return st.mean, err
}

func firstPass(run runner, pkts [][]byte) (firstStats, error) {
	ds := make([]float64, 0, len(pkts))
	var sum float64
	for _, p := range pkts {
		d, err := run(p, 1)
		if err != nil {
			return firstStats{}, err
		}
		ds = append(ds, ns(d))
		sum += ns(d)
	}
	slices.Sort(ds)
	n := len(ds)
	return firstStats{mean: sum / float64(n), p50: ds[n/2], p99: ds[n*99/100], max: ds[n-1]}, nil
}

func countEntries(m *ebpf.Map) (int, error) {
	n := 0
	err := ctmap.Scan(m, func(*abi.CTTuple, *abi.CTEntry) bool { n++; return true })
	return n, err
}

func ns(d time.Duration) float64 { return float64(d.Nanoseconds()) }

// diff is a[i] - b[i], for stage costs from paired runs.
func diff(a, b []float64) []float64 {
	out := make([]float64, min(len(a), len(b)))
	for i := range out {
		out[i] = a[i] - b[i]
	}
	return out
}
