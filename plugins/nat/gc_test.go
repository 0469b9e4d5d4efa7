package nat_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/natmap"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/core/plugintest"
	"github.com/hotpath/hotpath/core/plugintest/packet"
	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/plugins/nat"
)

// mapping writes both entries of a masqueraded flow pod -> remote that left
// as node:port.
func mapping(t *testing.T, m *ebpf.Map, pod, dst netip.AddrPort, port uint16) natmap.Flow {
	t.Helper()
	f := natmap.Flow{Pod: natmap.Addr4(pod.Addr()), PodPort: natmap.Port(pod.Port()), Remote: natmap.Addr4(dst.Addr()),
		RemotePort: natmap.Port(dst.Port()), Proto: packet.ProtoTCP}
	ek, ik := f.EgressKey(), f.IngressKey(natmap.Addr4(node), natmap.Port(port))
	if err := m.Put(&ek, &abi.NAT4Entry{Addr: natmap.Addr4(node), Port: natmap.Port(port)}); err != nil {
		t.Fatal(err)
	}
	if err := m.Put(&ik, &abi.NAT4Entry{Addr: f.Pod, Port: f.PodPort}); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestPrivilegedNATGCPurgesOrphansAndRechecks: a pass deletes the entries
// of flows whose CT entry is gone or expired, keeps live ones, and keeps a
// flow whose CT entry the datapath refreshed between the scan and the delete.
func TestPrivilegedNATGCPurgesOrphansAndRechecks(t *testing.T) {
	h := plugintest.New(t)
	m := h.Maps[abi.MapNAT4]
	ct, err := natmap.OpenCT(h.Layout)
	if err != nil {
		t.Fatal(err)
	}
	defer ct.Close()
	now := ctmap.Now()
	gone := mapping(t, m, pod1, remote, 40001)
	expired := mapping(t, m, pod2, remote, 40002)
	refreshed := mapping(t, m, pod3, remote, 40003)
	live := mapping(t, m, netip.MustParseAddrPort("10.240.4.2:40000"), remote, 40004)
	for _, c := range []struct {
		pod  netip.AddrPort
		life uint32
	}{{pod2, now - 5}, {pod3, now - 5}, {netip.MustParseAddrPort("10.240.4.2:40000"), now + 100}} {
		liveCT(t, h, c.pod, remote, packet.ProtoTCP, c.life)
	}
	calls := 0
	clock := func() uint32 {
		calls++
		if calls == 2 { // after the scan, before the first re-check
			liveCT(t, h, pod3, remote, packet.ProtoTCP, now+60)
		}
		return now
	}
	res, err := nat.Pass(m, ct, clock)
	if err != nil {
		t.Fatal(err)
	}
	if res.Scanned != 8 || res.Purged != 4 || res.Kept != 2 {
		t.Errorf("pass %+v: want 8 scanned, 4 purged (2 flows), 2 kept (the refreshed flow)", res)
	}
	for _, c := range []struct {
		f    natmap.Flow
		keep bool
	}{{gone, false}, {expired, false}, {refreshed, true}, {live, true}} {
		k := c.f.EgressKey()
		var v abi.NAT4Entry
		if err := m.Lookup(&k, &v); (err == nil) != c.keep {
			t.Errorf("flow %+v: present %v, want %v", c.f, err == nil, c.keep)
		}
	}
}

// TestPrivilegedNATExhaustionSignalPurgesOrphansAtOnce: with the periodic
// GC an hour away, a drop for exhaustion wakes the lease holder, which
// purges orphaned mappings at once and leaves live flows alone.
func TestPrivilegedNATExhaustionSignalPurgesOrphansAtOnce(t *testing.T) {
	env := natEnv(t, map[string]any{"port_range": "40000-40001", "gc_interval": "1h"}, "", "a", "b", "c")
	env.StartSupervisor()
	if _, err := lab.ServePeer(env.Lab.External, ext(8080)); err != nil {
		t.Fatal(err)
	}
	m, err := natmap.Open(pin.Layout{Root: env.Lab.BPFFS})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	orphan := mapping(t, m, netip.MustParseAddrPort("10.240.9.9:1234"), netip.MustParseAddrPort("192.0.2.77:443"), 45000)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var flows []*flow
	for _, name := range []string{"a", "b"} {
		f, err := dialFlow(ctx, env.Lab.Pods[name], 0, ext(8080))
		if err != nil {
			t.Fatal(err)
		}
		defer f.conn.Close()
		flows = append(flows, f)
	}
	short, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	if _, err := dialFlow(short, env.Lab.Pods["c"], 0, ext(8080)); err == nil {
		t.Fatal("a third flow got one of two ports")
	}
	waitFor(t, "the orphan purged after the exhaustion signal", 3*time.Second, func() bool {
		k := orphan.EgressKey()
		var v abi.NAT4Entry
		return m.Lookup(&k, &v) != nil
	})
	st := natStats(t, env)
	if st.GC.Signals == 0 || st.GC.Purged < 2 {
		t.Errorf("gc %+v: want a signalled pass that purged the orphan's two entries", st.GC)
	}
	for _, f := range flows {
		if err := f.echo(); err != nil {
			t.Errorf("live flow after the purge: %v", err)
		}
	}
}
