package demo

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hotpath/hotpath/core/ctmap"
)

// metricsAddr is the supervisor's /metrics, in the node namespace.
const metricsAddr = "127.0.0.1:9400"

// sockConn is one connection of SockClient: what the application saw.
type sockConn struct{ local, peer, name string }

// socketLB runs the demo binary's sock-client in the client pod, first born
// in the lab's cgroup, where the lb plugin's connect4 program points each
// socket at a backend before its first packet, then outside it, where the
// per-packet stages translate the VIP. The socket counters and the ct
// entries of the very connections tell which path ran.
func (d *Demo) socketLB(ctx context.Context) error {
	d.step("Socket LB: connections from the lab's cgroup are translated at connect()")
	const n = 5
	before, err := d.sockCounters(ctx)
	if err != nil {
		return err
	}
	// Earlier sections' connections may have used the same client ports:
	// their service entries live on for the close lifetime, so what tells
	// the paths apart is whether a service entry was created or counted a
	// packet during the run, not whether one exists.
	var recs []ctmap.Record
	if err := d.node.JSON(&recs, "ct", "list"); err != nil {
		return err
	}
	svcBefore := svcPackets(recs)
	in, err := d.runSockClient(ctx, n, true)
	if err != nil {
		return err
	}
	after, svcIn := in.counts, svcPackets(in.recs)
	for _, c := range in.conns {
		if c.peer != demoVIP {
			return fmt.Errorf("socket lb: getpeername of %s is %s, want the VIP %s", c.local, c.peer, demoVIP)
		}
		// The backend that answered names the flow to look for: a reused
		// client port may also have an older flow to another one.
		pod, ok := d.lab.Pods[c.name]
		if !ok {
			return fmt.Errorf("socket lb: %s was answered by %q, not a web pod", c.local, c.name)
		}
		be := pod.IP.String() + ":8081"
		if !hasFlow(in.recs, c.local, be) || svcTouched(svcBefore, svcIn, c.local) {
			return fmt.Errorf("socket lb: ct for %s: flow to %s %v, service entry created or counting (%d -> %d packets): want the flow to the backend and no service entry of its own",
				c.local, be, hasFlow(in.recs, c.local, be), svcBefore[c.local], svcIn[c.local])
		}
		d.say("  %-18s getpeername=%s greeting=%-5s ct: %s -> %s, no SVC entry of its own", c.local, c.peer, c.name, c.local, be)
	}
	d.say("$ curl -s http://%s/metrics | grep hotpath_lb_socket_   (in the node namespace)", metricsAddr)
	d.say("%s", strings.TrimRight(indent(strings.Join(after.lines, "\n")), "\n"))
	grew := after.connect - before.connect
	if grew != n || after.reverse-before.reverse < n {
		return fmt.Errorf("socket lb: connect4 translations grew by %d, reverse by %d for %d connections", grew, after.reverse-before.reverse, n)
	}
	d.say("  connect4 translations %d -> %d: one per connection, the packets carried the backend's address from the first SYN;", before.connect, after.connect)
	d.say("  reverse %d -> %d: getpeername answered with the VIP (Go's net asks once at connect, the client once more)", before.reverse, after.reverse)

	out, err := d.runSockClient(ctx, 1, false)
	if err != nil {
		return err
	}
	c := out.conns[0]
	svc := ctDst(out.recs, "SVC", c.local)
	if svc != demoVIP || !svcTouched(svcIn, svcPackets(out.recs), c.local) || out.counts.connect != after.connect {
		return fmt.Errorf("socket lb: outside the cgroup: service entry %q, connect4 %d -> %d: want a service entry to %s and no socket translation",
			svc, after.connect, out.counts.connect, demoVIP)
	}
	d.say("  %-18s getpeername=%s greeting=%-5s ct: SVC %s -> %s (per-packet path), connect4 still %d",
		c.local, c.peer, c.name, c.local, svc, out.counts.connect)
	d.fact("%d connections to %s from a process in the lab's cgroup were pointed at backends by connect4 (+%d translations, no CT_SERVICE entry), getpeername still showing the VIP; the same client outside the cgroup went per packet (CT_SERVICE entry)",
		n, demoVIP, grew)
	return nil
}

// sockRun is what one run of the socket client left: its connections, and
// the socket counters and CT entries right after it.
type sockRun struct {
	conns  []sockConn
	counts sockCounts
	recs   []ctmap.Record
}

// runSockClient runs this binary's socket client in the client pod for n
// connections to the VIP, born in the lab's cgroup or outside it, and reads
// what the run left.
func (d *Demo) runSockClient(ctx context.Context, n int, inCgroup bool) (sockRun, error) {
	var r sockRun
	self, err := os.Executable()
	if err != nil {
		return r, fmt.Errorf("socket lb: find the demo binary: %w", err)
	}
	client := d.lab.Pods["client"]
	args := []string{self, SockClientArg, demoVIP, strconv.Itoa(n)}
	var out []byte
	if inCgroup {
		d.say("$ demo %s %s %d   (in pod client, born in cgroup %s)", SockClientArg, demoVIP, n, d.lab.Cgroup)
		out, err = d.lab.ExecInCgroup(client.NS, args...)
	} else {
		d.say("$ demo %s %s %d   (in pod client, outside the cgroup)", SockClientArg, demoVIP, n)
		out, err = client.Exec(args...)
	}
	if err != nil {
		return r, err
	}
	if r.conns, err = parseSockConns(out, n); err != nil {
		return r, err
	}
	if r.counts, err = d.sockCounters(ctx); err != nil {
		return r, err
	}
	return r, d.node.JSON(&r.recs, "ct", "list")
}

// hasFlow: recs hold a TCP flow entry from src to dst.
func hasFlow(recs []ctmap.Record, src, dst string) bool {
	for _, r := range recs {
		if r.Direction == "OUT" && r.Proto == "TCP" && r.Src == src && r.Dst == dst {
			return true
		}
	}
	return false
}

// svcPackets are the packet counts of the TCP service entries to the demo
// VIP, by client address.
func svcPackets(recs []ctmap.Record) map[string]uint64 {
	out := map[string]uint64{}
	for _, r := range recs {
		if r.Direction == "SVC" && r.Proto == "TCP" && r.Dst == demoVIP {
			out[r.Src] = r.Packets
		}
	}
	return out
}

// svcTouched: src's service entry appeared or counted packets between two
// snapshots.
func svcTouched(before, after map[string]uint64, src string) bool {
	n, ok := after[src]
	if !ok {
		return false
	}
	m, had := before[src]
	return !had || n != m
}

// parseSockConns reads SockClient's lines.
func parseSockConns(out []byte, want int) ([]sockConn, error) {
	var cs []sockConn
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			return nil, fmt.Errorf("socket lb: sock-client said %q", l)
		}
		cs = append(cs, sockConn{f[0], f[1], f[2]})
	}
	if len(cs) != want {
		return nil, fmt.Errorf("socket lb: sock-client reported %d connections, want %d", len(cs), want)
	}
	return cs, nil
}

// ctDst is the destination of recs' entry of direction dir from src, "" if none.
func ctDst(recs []ctmap.Record, dir, src string) string {
	for _, r := range recs {
		if r.Direction == dir && r.Src == src && r.Proto == "TCP" {
			return r.Dst
		}
	}
	return ""
}

// sockCounts are the lb plugin's socket counters as /metrics shows them.
type sockCounts struct {
	connect, reverse uint64
	lines            []string
}

var sockSeries = regexp.MustCompile(`(?m)^(hotpath_lb_socket_[a-z_]+(?:\{[^}]*\})?) ([0-9.e+]+)$`)

// sockCounters scrapes the supervisor's /metrics from the node namespace
// (the lb plugin's lb4_sock_stats, read at scrape time).
func (d *Demo) sockCounters(ctx context.Context) (sockCounts, error) {
	var s sockCounts
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.lab.Node.Dial(ctx, network, addr)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+metricsAddr+"/metrics", nil)
	if err != nil {
		return s, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return s, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return s, fmt.Errorf("scrape metrics: %w", err)
	}
	for _, m := range sockSeries.FindAllStringSubmatch(string(body), -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		switch m[1] {
		case `hotpath_lb_socket_translations_total{hook="connect4"}`:
			s.connect = uint64(v)
		case "hotpath_lb_socket_reverse_total":
			s.reverse = uint64(v)
		}
		s.lines = append(s.lines, m[0])
	}
	if len(s.lines) == 0 {
		return s, fmt.Errorf("scrape metrics: no hotpath_lb_socket_* series (socket LB off?)")
	}
	return s, nil
}
