package demo

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hotpath/hotpath/lab"
)

const demoVIP = "10.96.0.10:80"

// loadBalancer creates a service over the three web pods, sends traffic
// through its VIP, and swaps the algorithm live while long-lived connections
// keep their backends.
func (d *Demo) loadBalancer(ctx context.Context) error {
	d.step("Service: VIP %s over web1, web2, web3 (weights 1:1:2), Maglev", demoVIP)
	args := []string{"lb", "service", "add", demoVIP + "/tcp", "--algorithm", "maglev"}
	for i, w := range []string{"web1", "web2", "web3"} {
		p := d.lab.Pods[w]
		if _, err := lab.ServeName(p.NS, p.IP.String()+":8081", w); err != nil {
			return err
		}
		args = append(args, "--backend", fmt.Sprintf("%s:8081,weight=%d", p.IP, []int{1, 1, 2}[i]))
	}
	if _, err := d.cli(true, args...); err != nil {
		return err
	}
	d.cli(true, "lb", "service", "list")

	d.step("Traffic through the VIP: 600 short connections, and 12 long-lived ones")
	counts, err := d.spread(ctx, 600)
	if err != nil {
		return err
	}
	d.say("  short connections per backend: %s", fmtCounts(counts))
	d.fact("600 connections to %s under maglev: %s (weights 1:1:2)", demoVIP, fmtCounts(counts))
	type long struct {
		s    *lab.Stream
		name string
	}
	var longs []long
	for i := 0; i < 12; i++ {
		s, name, err := d.vipStream(ctx)
		if err != nil {
			return err
		}
		defer s.Stop()
		longs = append(longs, long{s, name})
	}

	d.step("Live swap: maglev -> random -> maglev while the 12 connections exchange data")
	for _, alg := range []string{"random", "maglev"} {
		if _, err := d.cli(true, "lb", "service", "set-algorithm", demoVIP+"/tcp", alg); err != nil {
			return err
		}
		time.Sleep(time.Second)
		if alg == "random" {
			c, err := d.spread(ctx, 300)
			if err != nil {
				return err
			}
			d.say("  new connections under random: %s", fmtCounts(c))
		}
	}
	broken, rounds := 0, int64(0)
	for _, l := range longs {
		st := l.s.Stats()
		rounds += st.Rounds
		if st.Err != nil {
			broken++
		}
	}
	if broken > 0 {
		return fmt.Errorf("%d long-lived connections broke during the swap", broken)
	}
	d.say("  all 12 long-lived connections still on their first backend: %d round trips, none broken", rounds)
	d.fact("algorithm swapped maglev -> random -> maglev live: 12 long-lived connections kept their backends (%d verified round trips)", rounds)
	return nil
}

// spread opens n short connections to the VIP and counts the backends.
func (d *Demo) spread(ctx context.Context, n int) (map[string]int, error) {
	counts := map[string]int{}
	for i := 0; i < n; i++ {
		name, err := d.lab.Pods["client"].AskName(ctx, "tcp", demoVIP)
		if err != nil {
			return nil, fmt.Errorf("connection %d to %s: %w", i, demoVIP, err)
		}
		counts[name]++
	}
	return counts, nil
}

// vipStream opens a long-lived connection through the VIP and keeps it busy.
func (d *Demo) vipStream(ctx context.Context) (*lab.Stream, string, error) {
	conn, err := d.lab.Pods["client"].Dial(ctx, "tcp", demoVIP)
	if err != nil {
		return nil, "", err
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	name, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		conn.Close()
		return nil, "", err
	}
	conn.SetReadDeadline(time.Time{})
	return lab.StreamOn(conn, 256, 20*time.Millisecond), strings.TrimSpace(name), nil
}

func fmtCounts(c map[string]int) string {
	return fmt.Sprintf("web1=%d web2=%d web3=%d", c["web1"], c["web2"], c["web3"])
}
