package lb

import (
	"fmt"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/core/plugin"
)

// Socket-level load balancing: programs for the cgroup hooks (bpf/lb_sock.c),
// loaded by the plugin and attached by the supervisor (LoadResponse.Cgroup).

// sockProgramOf maps each cgroup attach point to its program.
var sockProgramOf = map[string]string{
	plugin.CgroupConnect4:    lbsockProgHpSockConnect4,
	plugin.CgroupSendmsg4:    lbsockProgHpSockSendmsg4,
	plugin.CgroupRecvmsg4:    lbsockProgHpSockRecvmsg4,
	plugin.CgroupGetpeername: lbsockProgHpSockGetpeername4,
}

// Private maps of socket LB, pinned under layout.PluginPrivate("lb") so that
// they outlive the plugin process and its generations: a socket translated by
// one instance's program is reverse-translated by the next one's.
var sockPrivate = []string{lbsockMapLb4SockFwd, lbsockMapLb4SockRev, lbsockMapLb4SockPeer, lbsockMapLb4SockStats}

// SockStat indexes lb4_sock_stats (enum lb_sock_stat).
type SockStat uint32

// Counters of lb4_sock_stats.
const (
	SockConnect SockStat = iota // connect4 translated
	SockSendmsg                 // sendmsg4 translated
	SockRefused                 // no backend: ECONNREFUSED
	SockReverse                 // recvmsg4 / getpeername4 gave the VIP back
)

// LoadSock loads the socket LB programs against the shared maps and the
// private socket maps under l, pins each under layout.Plugin("lb", gen) as
// "cgroup-<point>" and returns the pins by attach point.
func LoadSock(l pin.Layout, gen uint32, cfg Config) (map[string]string, error) {
	spec, err := loadLbsock()
	if err != nil {
		return nil, fmt.Errorf("load lb socket spec: %w", err)
	}
	if err := spec.Variables[lbsockVarLbHashSeed].Set(cfg.MaglevSeed); err != nil {
		return nil, fmt.Errorf("set %s: %w", lbsockVarLbHashSeed, err)
	}
	maps, err := pin.OpenShared(l)
	if err != nil {
		return nil, err
	}
	defer pin.CloseAll(maps)
	priv, err := l.OpenPrivate("lb", spec, sockPrivate)
	if err != nil {
		return nil, err
	}
	defer pin.CloseAll(priv)
	for name, m := range priv {
		maps[name] = m
	}
	pin.Fit(spec, maps)
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: maps})
	if err != nil {
		return nil, fmt.Errorf("load lb socket programs: %w", err)
	}
	defer coll.Close()
	pins := map[string]string{}
	for point, prog := range sockProgramOf {
		path, err := l.PinProg(coll.Programs[prog], "lb", gen, "cgroup-"+point)
		if err != nil {
			return nil, err
		}
		pins[point] = path
	}
	return pins, nil
}

// ReadSockStats sums the socket LB counters pinned under l: all zero when
// socket LB never ran there. It opens the existing pin only, so a reader
// (metrics, a test) never creates the map as a side effect.
func ReadSockStats(l pin.Layout) (map[SockStat]uint64, error) {
	m, err := openSockStats(l)
	if err != nil || m == nil {
		return map[SockStat]uint64{}, err
	}
	defer m.Close()
	return sockStats(m)
}

// openSockStats opens lb4_sock_stats, checked against this build's spec,
// or returns nil when it is not pinned.
func openSockStats(l pin.Layout) (*ebpf.Map, error) {
	spec, err := loadLbsock()
	if err != nil {
		return nil, err
	}
	return pin.OpenIfPinned(spec.Maps[lbsockMapLb4SockStats], filepath.Join(l.PluginPrivate("lb"), lbsockMapLb4SockStats),
		&ebpf.LoadPinOptions{ReadOnly: true})
}

// sockStats sums the per-CPU socket LB counters.
func sockStats(m *ebpf.Map) (map[SockStat]uint64, error) {
	out := map[SockStat]uint64{}
	for s := SockConnect; s <= SockReverse; s++ {
		var per []uint64
		if err := m.Lookup(uint32(s), &per); err != nil {
			return nil, fmt.Errorf("read socket lb counter %d: %w", s, err)
		}
		for _, n := range per {
			out[s] += n
		}
	}
	return out, nil
}

// sockMetrics exports lb4_sock_stats as hotpath_lb_socket_*: read at scrape
// time from the pinned map, so the counts survive plugin restarts.
type sockMetrics struct {
	root         func() string // pin root, "" before Activate or with socket LB off
	translations *prometheus.Desc
	refused      *prometheus.Desc
	reverse      *prometheus.Desc
}

func newSockMetrics(root func() string) *sockMetrics {
	return &sockMetrics{
		root: root,
		translations: prometheus.NewDesc("socket_translations_total",
			"Sockets pointed from a VIP to a backend by socket LB, by hook (connect4, sendmsg4).", []string{"hook"}, nil),
		refused: prometheus.NewDesc("socket_refused_total",
			"Connects and sends to a service without backends refused with ECONNREFUSED at the socket.", nil, nil),
		reverse: prometheus.NewDesc("socket_reverse_total",
			"Peer addresses turned back into the VIP (recvmsg4, getpeername4).", nil, nil),
	}
}

func (m *sockMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.translations
	ch <- m.refused
	ch <- m.reverse
}

func (m *sockMetrics) Collect(ch chan<- prometheus.Metric) {
	root := m.root()
	if root == "" {
		return
	}
	s, err := ReadSockStats(pin.Layout{Root: root})
	if err != nil {
		ch <- prometheus.NewInvalidMetric(m.translations, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(m.translations, prometheus.CounterValue, float64(s[SockConnect]), "connect4")
	ch <- prometheus.MustNewConstMetric(m.translations, prometheus.CounterValue, float64(s[SockSendmsg]), "sendmsg4")
	ch <- prometheus.MustNewConstMetric(m.refused, prometheus.CounterValue, float64(s[SockRefused]))
	ch <- prometheus.MustNewConstMetric(m.reverse, prometheus.CounterValue, float64(s[SockReverse]))
}
