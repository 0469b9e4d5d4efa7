package bench

import (
	"fmt"
	"net"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
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
}

func (ep entryProgs) close() {
	closePrograms(ep.ingress)
	closePrograms(ep.egress)
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
	return ingressRuns, inNs + outNs, err
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
			c.Logf("lab bpf run %d/%d %s: %.0f ns per packet entering the node", run+1, c.LabRuns, r.v.name, ns)
		}
	}
	return nil
}
