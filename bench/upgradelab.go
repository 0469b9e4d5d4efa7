package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/supervisor"
)

const (
	echoPort = 9000 // in-process TCP echo server in every backend pod
	udpPort  = 5353 // in-process UDP echo server in every backend pod
	// upStreams long-lived TCP connections through the VIP exchange a
	// 256-byte echo every 20 ms during the whole suite.
	upStreams        = 8
	upStreamChunk    = 256
	upStreamInterval = 20 * time.Millisecond
)

var (
	upTCPVIP = netip.MustParseAddrPort("10.96.0.40:9000")
	upUDPVIP = netip.MustParseAddrPort("10.96.0.40:5353")
)

// upgradeLab is a lab with the supervisor (ct and lb plugins), a TCP and a
// UDP service over the three backends, and traffic through both VIPs.
type upgradeLab struct {
	e       *labEnv
	h       *hotpathRun
	streams []*lab.Stream
	udp     *udpProbe
}

func newUpgradeLab(c *Context, variants string) (u *upgradeLab, err error) {
	e, err := newLabEnv(c)
	if err != nil {
		return nil, err
	}
	u = &upgradeLab{e: e}
	defer func() {
		if err != nil {
			u.close()
		}
	}()
	if u.h, err = startSupervisor(c, e, []supervisor.PluginConfig{{Name: "ct"}, {Name: "lb"}}); err != nil {
		return u, err
	}
	u.h.Ours = []string{variants}
	e.onClose(u.h.stop)
	for _, b := range e.backends {
		if _, err := lab.EchoServer(b.NS, netip.AddrPortFrom(b.IP, echoPort).String()); err != nil {
			return u, err
		}
		if _, err := lab.UDPEcho(b.NS, netip.AddrPortFrom(b.IP, udpPort).String()); err != nil {
			return u, err
		}
	}
	if err := u.h.addService(service{vip: upTCPVIP, backends: e.backendPorts(echoPort)}, "maglev"); err != nil {
		return u, err
	}
	if err := u.h.addUDPService(upUDPVIP, e.backendPorts(udpPort), "random"); err != nil {
		return u, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range upStreams {
		s, err := lab.StartStream(ctx, e.client.NS, upTCPVIP.String(), upStreamChunk, upStreamInterval)
		if err != nil {
			return u, err
		}
		u.streams = append(u.streams, s)
	}
	if u.udp, err = startUDPProbe(e.client.NS, upUDPVIP.String()); err != nil {
		return u, err
	}
	// Every stream and the probe must have made round trips through the
	// VIPs before the first swap, or a broken path would pass for a clean
	// upgrade.
	time.Sleep(500 * time.Millisecond)
	if sent, lost := u.udp.counts(); sent == 0 || lost > 0 {
		return u, fmt.Errorf("UDP through %s before any swap: %d of %d datagrams lost", upUDPVIP, lost, sent)
	}
	for i, s := range u.streams {
		if st := s.Stats(); st.Err != nil || st.Rounds == 0 {
			return u, fmt.Errorf("TCP stream %d through %s before any swap: %d rounds, %v", i, upTCPVIP, st.Rounds, st.Err)
		}
	}
	return u, nil
}

// broken counts the streams that have failed so far.
func (u *upgradeLab) broken() int {
	n := 0
	for _, s := range u.streams {
		if s.Stats().Err != nil {
			n++
		}
	}
	return n
}

// upgrade is `hotpath plugin upgrade NAME --binary PATH --health-window W
// -o json`. The result is printed for rolled-back upgrades too.
func (h *hotpathRun) upgrade(name, binary string, window time.Duration) (supervisor.UpgradeResult, error) {
	out, err := h.cli("plugin", "upgrade", name, "--binary", binary, "--health-window", window.String(), "-o", "json")
	var res supervisor.UpgradeResult
	if jerr := json.Unmarshal(out, &res); jerr != nil && err == nil {
		return res, fmt.Errorf("upgrade %s: decode %q: %w", name, tail(out, 300), jerr)
	}
	if res.NewPid > 0 {
		h.Remember(res.NewPid) // for stop
	}
	return res, err
}

// drops sums the datapath's drop counters that a swap must never raise.
func (u *upgradeLab) drops() (uint64, error) {
	m, err := ebpf.LoadPinnedMap(pin.Layout{Root: u.e.lab.BPFFS}.Map(abi.MapMetrics), nil)
	if err != nil {
		return 0, fmt.Errorf("open metrics map: %w", err)
	}
	defer m.Close()
	c, err := supervisor.DatapathCounters(m)
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, r := range []abi.Reason{abi.AbiHpReasonHP_R_MISSED_TAIL_CALL, abi.AbiHpReasonHP_R_NO_CONTEXT,
		abi.AbiHpReasonHP_R_PARSE_ERROR, abi.AbiHpReasonHP_R_GEN_MISMATCH, abi.AbiHpReasonHP_R_NO_BACKEND} {
		n += c[r][0].Packets + c[r][1].Packets
	}
	return n, nil
}

// close stops the traffic, then the lab (and with it the supervisor).
func (u *upgradeLab) close() {
	for _, s := range u.streams {
		s.Stop()
	}
	if u.udp != nil {
		u.udp.close()
	}
	u.e.close()
}
