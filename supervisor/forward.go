package supervisor

import (
	"fmt"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/entry"
	"github.com/hotpath/hotpath/supervisor/pipeline"
)

// The forward slot is the supervisor's: its stage (bpf/entry.c hp_forward)
// ends every packet's single pass at the hook where it entered the node. It
// marks what goes on through the node, so the egress hook it leaves by lets
// it go, and redirects where the next hop is known. No plugin may claim it.
var slotForward = abi.SlotName(abi.AbiHpSlotHP_SLOT_FORWARD)

// entryDir holds the forward stage's own maps (redirect targets, counters).
func (s *Supervisor) entryDir() string { return filepath.Join(s.cfg.BPFFS, "entry") }

// loadEntry loads the entry programs and the forward stage, before the
// first generation is built: every bank the supervisor fills carries it.
func (s *Supervisor) loadEntry() error {
	if s.entry != nil {
		return nil
	}
	e, err := entry.LoadPinned(s.maps.ByName, s.entryDir())
	if err != nil {
		return err
	}
	s.entry = e
	return nil
}

// addForward puts the forward stage into a generation's programs, at the
// ingress hooks only (at egress it would have nothing to do).
func (s *Supervisor) addForward(progs map[abi.Slot]*ebpf.Program, hooks map[abi.Slot]pipeline.Hooks) error {
	if s.entry == nil {
		return nil
	}
	p, err := s.entry.Forward.Clone()
	if err != nil {
		return fmt.Errorf("clone forward stage: %w", err)
	}
	progs[abi.AbiHpSlotHP_SLOT_FORWARD], hooks[abi.AbiHpSlotHP_SLOT_FORWARD] = p, pipeline.HookIngress
	return nil
}

// deviceKind says how the forward stage may send a packet to dev: into the
// pod behind a veth whose peer lives in another namespace, out of any other
// device of ours with the kernel's neighbour resolution; never to the
// overlay device (the tunnel stage owns what goes there).
func (s *Supervisor) deviceKind(dev string) (uint32, int, error) {
	l, err := netlink.LinkByName(dev)
	if err != nil {
		return 0, 0, fmt.Errorf("device %s: %w", dev, err)
	}
	idx := l.Attrs().Index
	if s.cfg.Tunnel != nil && dev == s.cfg.Tunnel.Device {
		return 0, idx, nil
	}
	if l.Type() == "veth" && l.Attrs().NetNsID >= 0 {
		return entry.KindPeer, idx, nil
	}
	if l.Attrs().EncapType != "ether" {
		return 0, idx, nil
	}
	return entry.KindNeigh, idx, nil
}

// setForwarding records the redirect target kind of every device and turns
// direct redirects on or off as configured. They stay off where the kernel
// lacks a helper the forward stage needs: the kernel then forwards, each
// packet still runs the pipeline once.
func (s *Supervisor) setForwarding() error {
	kinds := map[int]uint32{}
	for _, dev := range s.cfg.Devices {
		kind, idx, err := s.deviceKind(dev)
		if err != nil {
			return err
		}
		kinds[idx] = kind
	}
	if err := s.entry.SetDevices(kinds); err != nil {
		return err
	}
	if err := s.syncRouting(); err != nil {
		return err
	}
	on := s.cfg.DirectRedirectOn()
	if on {
		if err := haveRedirectHelpers(); err != nil {
			s.log.Warn("direct redirects off", "error", err)
			on = false
		}
	}
	if on {
		s.pipe.SetFlags(uint32(abi.AbiHpConfigFlagHP_CFG_DIRECT_REDIRECT), 0)
	} else {
		s.pipe.SetFlags(0, uint32(abi.AbiHpConfigFlagHP_CFG_DIRECT_REDIRECT))
	}
	return nil
}

func haveRedirectHelpers() error {
	for _, fn := range []asm.BuiltinFunc{asm.FnFibLookup, asm.FnRedirectPeer, asm.FnRedirectNeigh} {
		if err := features.HaveProgramHelper(ebpf.SchedCLS, fn); err != nil {
			return fmt.Errorf("helper %s: %w", fn, err)
		}
	}
	return nil
}

var forwardDesc = prometheus.NewDesc("hotpath_datapath_forward_total",
	"What the forward stage did with packets at the end of their pass, by result (peer, neigh: redirected; others: left to the kernel).", []string{"result"}, nil)

func (m *metrics) collectForward(ch chan<- prometheus.Metric) {
	if m.s.entry == nil {
		return
	}
	st, err := m.s.entry.ForwardStats()
	if err != nil {
		return
	}
	for name, v := range st {
		ch <- prometheus.MustNewConstMetric(forwardDesc, prometheus.CounterValue, float64(v), name)
	}
}
