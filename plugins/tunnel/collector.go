package tunnel

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus"
)

// Indexes of tun_stats (enum tun_stat in bpf/tunnel.c).
const (
	statEncapPkts = iota
	statEncapBytes
	statDecapPkts
	statDecapBytes
	statDropKey
	statDropRewrite
	statFragNeeded
	statDropTooBig
	nStats
)

var (
	descPackets = prometheus.NewDesc("packets_total", "Packets through the overlay, by direction (encap, decap).", []string{"direction"}, nil)
	descBytes   = prometheus.NewDesc("bytes_total", "Bytes of inner packets through the overlay, by direction (encap, decap).", []string{"direction"}, nil)
	descDrops   = prometheus.NewDesc("drops_total", "Packets for a remote pod CIDR the tunnel stage dropped, by reason.", []string{"reason"}, nil)
	descFrag    = prometheus.NewDesc("frag_needed_total", "Packets with DF too big for the overlay, answered with ICMP fragmentation needed.", nil, nil)
	descRoutes  = prometheus.NewDesc("routes", "Routes in the tunnel map.", nil, nil)
)

// collector reads the datapath's per-CPU counters when scraped.
type collector struct{ p *Plugin }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPackets, descBytes, descDrops, descFrag, descRoutes} {
		ch <- d
	}
}

// Collect reports nothing before activation and an invalid metric after a
// failed read, so a scrape says what went wrong instead of zeros.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	rt := c.p.rt
	if rt == nil {
		return
	}
	st, err := readStats(rt.stats)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descPackets, err)
		return
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descPackets, st[statEncapPkts], "encap")
	counter(descPackets, st[statDecapPkts], "decap")
	counter(descBytes, st[statEncapBytes], "encap")
	counter(descBytes, st[statDecapBytes], "decap")
	counter(descDrops, st[statDropKey], "tunnel_key")
	counter(descDrops, st[statDropRewrite], "rewrite")
	counter(descDrops, st[statDropTooBig], "too_big")
	counter(descFrag, st[statFragNeeded])
	if rs, err := listRoutes(rt.routes); err == nil {
		ch <- prometheus.MustNewConstMetric(descRoutes, prometheus.GaugeValue, float64(len(rs)))
	}
}

// readStats sums the per-CPU counters.
func readStats(m *ebpf.Map) ([nStats]uint64, error) {
	var out [nStats]uint64
	for i := uint32(0); i < nStats; i++ {
		var per []uint64
		if err := m.Lookup(i, &per); err != nil {
			return out, fmt.Errorf("read tun_stats[%d]: %w", i, err)
		}
		for _, v := range per {
			out[i] += v
		}
	}
	return out, nil
}
