package bench

import (
	"fmt"
	"time"
)

const (
	// upgrades of each plugin per suite, alternating two builds.
	upgrades = 10
	// upgradeWindow is the health window of every upgrade; the supervisor's
	// duration includes it.
	upgradeWindow = 300 * time.Millisecond
	// algSwaps is how many `lb service set-algorithm` calls alternate the
	// streams' service between random and maglev.
	algSwaps = 12
)

// swapStats collects one kind of swap: a sample per swap.
type swapStats struct {
	took, flip   []float64 // s
	lost, broken []float64 // UDP datagrams lost, TCP streams broken
	noPacket     int       // upgrades with no packet on the new generation within the window
	failed       []string  // upgrades refused or rolled back
}

// upgradeSuite upgrades the ct and lb plugins, alternating two real builds,
// and swaps the streams' service between random and maglev, all while TCP
// streams and a UDP probe run through VIPs; then it times bulk service
// configuration on the same supervisor.
func upgradeSuite(c *Context) (rows []Row, err error) {
	if err := EnsureTools(c); err != nil {
		return nil, err
	}
	v, err := buildVariants("ct", "lb")
	if err != nil {
		return nil, err
	}
	defer v.close()
	u, err := newUpgradeLab(c, v.dir)
	if err != nil {
		return nil, err
	}
	defer u.close()
	dropsBefore, err := u.drops()
	if err != nil {
		return nil, err
	}
	plugins := map[string]*swapStats{"ct": {}, "lb": {}}
	// A swap's UDP losses are those counted from its start to the next
	// one's: a datagram is known lost only udpWait after it was sent.
	var order []*swapStats
	var marks []int
	for i := range upgrades {
		for _, name := range []string{"ct", "lb"} {
			_, lost := u.udp.counts()
			order, marks = append(order, plugins[name]), append(marks, lost)
			u.upgradeOnce(c, plugins[name], name, v.builds[name][i%2], i)
		}
	}
	time.Sleep(udpWait + udpInterval)
	_, lost := u.udp.counts()
	marks = append(marks, lost)
	for k, st := range order {
		st.lost = append(st.lost, float64(marks[k+1]-marks[k]))
	}
	algs := &swapStats{}
	for i := range algSwaps {
		if err := u.setAlgorithm(algs, []string{"random", "maglev"}[i%2]); err != nil {
			return nil, err
		}
	}
	dropsAfter, err := u.drops()
	if err != nil {
		return nil, err
	}
	for name, st := range plugins {
		if len(st.failed) > upgrades/2 {
			return nil, fmt.Errorf("%s: %d of %d upgrades failed: %v", name, len(st.failed), upgrades, st.failed)
		}
	}
	rows = upgradeRows(u, plugins, algs, dropsAfter-dropsBefore)
	cfg, err := configRows(c, u)
	return append(rows, cfg...), err
}

// upgradeOnce runs one upgrade and records it with what the traffic lost
// meanwhile.
func (u *upgradeLab) upgradeOnce(c *Context, st *swapStats, name, binary string, i int) {
	broken0 := u.broken()
	res, err := u.h.upgrade(name, binary, upgradeWindow)
	st.broken = append(st.broken, float64(u.broken()-broken0))
	if err != nil || res.RolledBack {
		st.failed = append(st.failed, fmt.Sprintf("#%d: %v", i+1, err))
		c.Logf("upgrade %s #%d failed: %v", name, i+1, err)
		return
	}
	st.took = append(st.took, res.Duration.Seconds())
	if res.FlipToPacket > 0 {
		st.flip = append(st.flip, res.FlipToPacket.Seconds())
	} else {
		st.noPacket++
	}
	c.Logf("upgrade %s #%d to %s: %v, flip to first packet %v, generation %d", name, i+1, res.To,
		res.Duration.Round(time.Millisecond), res.FlipToPacket, res.Generation)
}

// setAlgorithm swaps the streams' service to alg and records the CLI's
// round trip and the streams broken meanwhile.
func (u *upgradeLab) setAlgorithm(st *swapStats, alg string) error {
	broken0 := u.broken()
	start := time.Now()
	if _, err := u.h.cli("lb", "service", "set-algorithm", upTCPVIP.String()+"/tcp", alg); err != nil {
		return err
	}
	st.took = append(st.took, time.Since(start).Seconds())
	// Give every stream a round trip on the new table before counting.
	time.Sleep(2 * upStreamInterval)
	st.broken = append(st.broken, float64(u.broken()-broken0))
	return nil
}

func upgradeRows(u *upgradeLab, plugins map[string]*swapStats, algs *swapStats, drops uint64) []Row {
	traffic := fmt.Sprintf("%d TCP streams (%d B echo every %v) through a maglev VIP + 1 UDP datagram every %v through a random VIP",
		upStreams, upStreamChunk, upStreamInterval, udpInterval)
	var rows []Row
	for _, name := range []string{"ct", "lb"} {
		st := plugins[name]
		what := fmt.Sprintf("%s plugin upgrade (`hotpath plugin upgrade --health-window %v`, alternating two builds) under %s", name, upgradeWindow, traffic)
		took := Row{Name: what + ": duration_ns (start of the new instance → old one stopped; includes the health window)",
			Unit: UnitSeconds, Samples: st.took, Tail: true}
		if len(st.failed) > 0 {
			took.Note = fmt.Sprintf("%d upgrades failed and are left out: %v", len(st.failed), st.failed)
		}
		flip := Row{Name: name + " plugin upgrade: flip_to_first_packet_ns (generation flip → first packet through the new generation)",
			Unit: UnitSeconds, Samples: st.flip, Tail: true,
			Note: "includes the wait for the next packet after the flip: the streams' rounds bunch together and the UDP probe sends every 10 ms, so packets come in bursts a few ms apart and this is an upper bound on the flip's own latency"}
		if st.noPacket > 0 {
			flip.Note += fmt.Sprintf("; %d upgrades saw no packet within the window and are left out", st.noPacket)
		}
		rows = append(rows, took, flip,
			Row{Name: name + " plugin upgrade: UDP datagrams lost per swap", Unit: UnitCount, Samples: st.lost, Target: Below(0)},
			Row{Name: name + " plugin upgrade: TCP streams broken per swap (error or echo mismatch)", Unit: UnitCount, Samples: st.broken, Target: Below(0)})
	}
	maxGap := time.Duration(0)
	for _, s := range u.streams {
		maxGap = max(maxGap, s.Stats().MaxGap)
	}
	sent, lost := u.udp.counts()
	rows[0].Note = joinNotes(rows[0].Note, fmt.Sprintf("whole suite: %d of %d UDP datagrams lost, %d datapath drops (missed tail call, no context, parse error, generation mismatch, no backend), longest TCP echo gap %v",
		lost, sent, drops, maxGap.Round(time.Millisecond)))
	alg := fmt.Sprintf("LB algorithm swap random ↔ maglev (M=16381) of the streams' VIP, %d swaps", algSwaps)
	return append(rows,
		Row{Name: alg + ": `hotpath lb service set-algorithm` CLI round trip (process start, API, table build and swap)",
			Unit: UnitSeconds, Samples: algs.took, Tail: true},
		Row{Name: alg + ": established flows broken per swap (a moved flow would break: the new backend has no such connection)",
			Unit: UnitCount, Samples: algs.broken, Target: Below(0)})
}

func joinNotes(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
