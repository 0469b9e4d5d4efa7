package bench

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/hotpath/hotpath/core/plugin"
)

// The lab's throughput rows measure the endpoints as much as the node: on
// this VM their samples spread ±15%, more than most datapath changes move
// them. The kernel's own accounting of BPF run time (BPF_ENABLE_STATS)
// measures hotpath's share alone: nanoseconds per packet in the entry
// programs, their tail-called stages included, under the same iperf3
// traffic. It separates variants whose throughput rows cannot.

// entryProgs are the programs attached at the TCX hooks of the lab's node
// devices (hotpath's entry programs, the bare forwarder): those at ingress
// hooks, where a packet enters the node, and those at egress hooks.
type entryProgs struct {
	ingress, egress []*ebpf.Program
	// sock are the programs at the socket hooks of the lab's cgroup (the
	// lb plugin's socket LB), which run once per connection, not per packet.
	sock []*ebpf.Program
}

func (ep entryProgs) close() {
	closePrograms(ep.ingress)
	closePrograms(ep.egress)
	closePrograms(ep.sock)
}

// entryPrograms opens the distinct programs the kernel has at the TCX hooks
// of the pods' node-side veths and the env's extra devices (none when the
// variant attaches nothing: plain routing, netfilter).
func (e *labEnv) entryPrograms() (ep entryProgs, err error) {
	devs := append([]string(nil), e.extraDevices...)
	for _, p := range e.lab.Pods {
		devs = append(devs, p.HostIf)
	}
	ids := map[ebpf.AttachType][]ebpf.ProgramID{}
	err = e.lab.Node.Do(func() error {
		seen := map[ebpf.ProgramID]bool{}
		for _, dev := range devs {
			ifc, err := net.InterfaceByName(dev)
			if err != nil {
				return fmt.Errorf("device %s: %w", dev, err)
			}
			for _, hook := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
				res, err := link.QueryPrograms(link.QueryOptions{Target: ifc.Index, Attach: hook})
				if err != nil {
					return fmt.Errorf("query tcx %s of %s: %w", hook, dev, err)
				}
				for _, p := range res.Programs {
					if !seen[p.ID] {
						seen[p.ID] = true
						ids[hook] = append(ids[hook], p.ID)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return ep, err
	}
	defer func() {
		if err != nil {
			ep.close()
		}
	}()
	if ep.sock, err = e.sockPrograms(); err != nil {
		return ep, err
	}
	for hook, list := range ids {
		for _, id := range list {
			p, err := ebpf.NewProgramFromID(id)
			if err != nil {
				return ep, fmt.Errorf("open program %d: %w", id, err)
			}
			if hook == ebpf.AttachTCXIngress {
				ep.ingress = append(ep.ingress, p)
			} else {
				ep.egress = append(ep.egress, p)
			}
		}
	}
	return ep, nil
}

// sockPrograms opens the programs at the socket hooks of the lab's cgroup
// (none without a cgroup).
func (e *labEnv) sockPrograms() (ps []*ebpf.Program, err error) {
	if e.lab.Cgroup == "" {
		return nil, nil
	}
	cg, err := os.Open(e.lab.Cgroup)
	if err != nil {
		return nil, fmt.Errorf("open cgroup: %w", err)
	}
	defer cg.Close()
	defer func() {
		if err != nil {
			closePrograms(ps)
		}
	}()
	// Every cgroup hook a plugin can attach to (socket LB uses them all).
	for _, point := range plugin.CgroupPoints() {
		hook, err := plugin.CgroupAttachType(point)
		if err != nil {
			return ps, err
		}
		res, err := link.QueryPrograms(link.QueryOptions{Target: int(cg.Fd()), Attach: hook})
		if err != nil {
			return ps, fmt.Errorf("query %s of the lab's cgroup: %w", hook, err)
		}
		for _, q := range res.Programs {
			p, err := ebpf.NewProgramFromID(q.ID)
			if err != nil {
				return ps, fmt.Errorf("open program %d: %w", q.ID, err)
			}
			ps = append(ps, p)
		}
	}
	return ps, nil
}

func closePrograms(ps []*ebpf.Program) {
	for _, p := range ps {
		p.Close()
	}
}

// bpfRunTotals sums the programs' run counts and run times.
func bpfRunTotals(ps []*ebpf.Program) (runs, ns uint64, err error) {
	for _, p := range ps {
		st, err := p.Stats()
		if err != nil {
			return 0, 0, fmt.Errorf("program stats: %w", err)
		}
		runs += st.RunCount
		ns += uint64(st.Runtime.Nanoseconds())
	}
	return runs, ns, nil
}

// bpfPerPacket runs one iperf3 -P 1 sample through e and returns the BPF
// nanoseconds, at both hooks, per packet that entered the node (a run of an
// ingress program): with direct redirects a forwarded packet meets only
// the ingress hook, without them the egress one too.
func (e *labEnv) bpfPerPacket(ep entryProgs) (float64, error) {
	in0, ns0, err := ep.snapshot()
	if err != nil {
		return 0, err
	}
	if _, err := e.iperf(e.tputAddr, iperfSecs, 1); err != nil {
		return 0, err
	}
	in1, ns1, err := ep.snapshot()
	if err != nil {
		return 0, err
	}
	if in1 <= in0 {
		return 0, fmt.Errorf("ingress programs ran %d times during iperf3", in1-in0)
	}
	return float64(ns1-ns0) / float64(in1-in0), nil
}

// snapshot is the ingress programs' run count and the run time of all.
func (ep entryProgs) snapshot() (ingressRuns, ns uint64, err error) {
	ingressRuns, inNs, err := bpfRunTotals(ep.ingress)
	if err != nil {
		return 0, 0, err
	}
	_, outNs, err := bpfRunTotals(ep.egress)
	if err != nil {
		return 0, 0, err
	}
	_, sockNs, err := bpfRunTotals(ep.sock)
	return ingressRuns, inNs + outNs + sockNs, err
}

// bpfPerConn runs one connection-rate sample through e and returns, per
// connection, the BPF time at the node's hooks and the cgroup's socket
// hooks, and the CPU time the whole machine was busy (/proc/stat, read by
// the client over its own measuring window, so the client's start and exit
// are left out): what share of a connection's cost is the datapath's,
// which the conn/s rows, spread by the endpoints' noise, cannot show.
func (e *labEnv) bpfPerConn(c *Context, ep entryProgs) (bpf, cpu float64, err error) {
	_, ns0, err := ep.snapshot()
	if err != nil {
		return 0, 0, err
	}
	res, err := e.connRate(c, e.connAddr, connDur, connWorkers)
	if err != nil {
		return 0, 0, err
	}
	_, ns1, err := ep.snapshot()
	if err != nil {
		return 0, 0, err
	}
	if res.Conns == 0 || res.Busy <= 0 {
		return 0, 0, fmt.Errorf("%d connections, %.2f s of busy CPU in %s", res.Conns, res.Busy, connDur)
	}
	n := float64(res.Conns)
	return float64(ns1-ns0) / 1e9 / n, res.Busy / n, nil
}

// cpuBusy is the machine's CPU time in seconds spent other than idle or
// waiting for I/O since boot (/proc/stat counts in USER_HZ, 100 on Linux).
func cpuBusy() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var busy uint64
	for i, s := range f[1:] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return float64(busy) / 100, nil
}

// bpfPhase measures bpfPerPacket for every variant with programs and throughput
// rows, c.LabRuns times in interleaved rounds, with the kernel's accounting
// on only for this phase (it costs every program run two clock reads).
func bpfPhase(c *Context, live []*labRun) error {
	var runs []*labRun
	progs := map[*labRun]entryProgs{}
	defer func() {
		for _, ep := range progs {
			ep.close()
		}
	}()
	for _, r := range live {
		if !r.v.tput {
			continue
		}
		ep, err := r.e.entryPrograms()
		if err != nil {
			return fmt.Errorf("%s: %w", r.v.name, err)
		}
		if len(ep.ingress) == 0 {
			ep.close()
			continue
		}
		runs = append(runs, r)
		progs[r] = ep
	}
	if len(runs) == 0 {
		return nil
	}
	// On until closed (or this process exits).
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return fmt.Errorf("enable BPF stats: %w", err)
	}
	defer stats.Close()
	for run := range c.LabRuns {
		for i := range runs {
			r := runs[(i+run)%len(runs)]
			ns, err := r.e.bpfPerPacket(progs[r])
			if err != nil {
				return fmt.Errorf("%s: %w", r.v.name, err)
			}
			r.bpfNs = append(r.bpfNs, ns)
			bpf, cpu, err := r.e.bpfPerConn(c, progs[r])
			if err != nil {
				return fmt.Errorf("%s: %w", r.v.name, err)
			}
			r.bpfConn, r.cpuConn = append(r.bpfConn, bpf), append(r.cpuConn, cpu)
			c.Logf("lab bpf run %d/%d %s: %.0f ns per packet entering the node; per connection %.1f µs BPF of %.0f µs CPU",
				run+1, c.LabRuns, r.v.name, ns, bpf*1e6, cpu*1e6)
		}
	}
	return nil
}
