package demo

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/hotpath/hotpath/lab"
)

// conntrack shows live CT entries, then kills the ct plugin under traffic and
// shows it come back with the connection's counters continuing.
func (d *Demo) conntrack(ctx context.Context) error {
	d.step("Traffic: a long-lived TCP stream client -> web1, plus a UDP exchange")
	web1 := d.lab.Pods["web1"]
	dst := web1.IP.String() + ":8080"
	if _, err := lab.EchoServer(web1.NS, dst); err != nil {
		return err
	}
	if _, err := lab.UDPEcho(web1.NS, web1.IP.String()+":5353"); err != nil {
		return err
	}
	s, err := lab.StartStream(ctx, d.lab.Pods["client"].NS, dst, 1024, 10*time.Millisecond)
	if err != nil {
		return err
	}
	defer s.Stop()
	if err := d.lab.Pods["client"].Echo(ctx, "udp", web1.IP.String()+":5353", []byte("hello")); err != nil {
		return err
	}
	time.Sleep(time.Second)
	d.cli(true, "ct", "list")

	d.step("Crash: kill -9 the ct plugin while the stream runs")
	before := d.plugin("ct")
	e0 := d.ctEntry(s.LocalAddr(), dst)
	if e0 == nil {
		return fmt.Errorf("no CT entry for the stream")
	}
	d.say("  ct plugin pid %d, stream entry at %d packets", before.Pid, e0.Packets)
	if err := syscall.Kill(before.Pid, syscall.SIGKILL); err != nil {
		return err
	}
	killed := time.Now()
	var back time.Duration
	for time.Since(killed) < 10*time.Second {
		p := d.plugin("ct")
		if p.Pid != before.Pid && p.Pid > 0 && p.Healthy {
			back = time.Since(killed)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if back == 0 {
		return fmt.Errorf("ct plugin did not come back")
	}
	time.Sleep(time.Second)
	d.cli(true, "plugin", "list")
	e1 := d.ctEntry(s.LocalAddr(), dst)
	st := s.Stats()
	if st.Err != nil {
		return fmt.Errorf("stream broke: %w", st.Err)
	}
	if e1 == nil || e1.Packets <= e0.Packets {
		return fmt.Errorf("stream's CT entry did not keep counting")
	}
	d.say("  stream entry now at %d packets; %d round trips, longest pause %s", e1.Packets, st.Rounds, st.MaxGap.Round(time.Millisecond))
	d.fact("ct plugin killed with SIGKILL: back in %s as pid %d (was %d)", back.Round(time.Millisecond), d.plugin("ct").Pid, before.Pid)
	d.fact("TCP stream through the node never stopped: %d round trips, %d bytes verified, longest pause %s",
		st.Rounds, st.Bytes, st.MaxGap.Round(time.Millisecond))
	d.fact("its CT entry kept counting across the crash: %d -> %d packets", e0.Packets, e1.Packets)
	return nil
}
