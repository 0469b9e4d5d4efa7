package demo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hotpath/hotpath/lab"
)

// upgrade upgrades the ct plugin live under traffic, then tries a build
// that turns unhealthy after activation and shows it rolled back.
func (d *Demo) upgrade(ctx context.Context) error {
	next := filepath.Join(d.opts.Bin, "demo", "hotpath-ct-0.2.0")
	faulty := filepath.Join(d.opts.Bin, "demo", "faultyct")
	for _, p := range []string{next, faulty} {
		if _, err := os.Stat(p); err != nil {
			d.say("  skipping upgrades: %s missing (make build makes it)", p)
			return nil
		}
	}
	web2 := d.lab.Pods["web2"]
	dst := web2.IP.String() + ":8080"
	if _, err := lab.EchoServer(web2.NS, dst); err != nil {
		return err
	}
	s, err := lab.StartStream(ctx, d.lab.Pods["client"].NS, dst, 1024, 10*time.Millisecond)
	if err != nil {
		return err
	}
	defer s.Stop()
	time.Sleep(300 * time.Millisecond)

	d.step("Rolling upgrade: ct 0.1.0 -> 0.2.0 while a stream client -> web2 runs")
	before := d.plugin("ct")
	if _, err := d.cli(true, "plugin", "upgrade", "ct", "--binary", next, "--health-window", "1s"); err != nil {
		return err
	}
	after := d.plugin("ct")
	d.cli(true, "plugin", "list")
	d.fact("ct upgraded %s -> %s live: generation %d -> %d, GC lease moved from pid %d to %d",
		before.Version, after.Version, before.Generation, after.Generation, before.Pid, after.Pid)

	d.step("Broken build: a ct build that turns unhealthy after activation is rolled back")
	script := filepath.Join(d.lab.Dir, "hotpath-ct-broken")
	body := fmt.Sprintf("#!/bin/sh\n# ct 0.3.0 that reports unhealthy 300ms after activation\nHOTPATH_FAULT=unhealthy=300ms exec %s \"$@\"\n", faulty)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		return err
	}
	out, err := d.cli(true, "plugin", "upgrade", "ct", "--binary", script, "--health-window", "1500ms")
	if err == nil {
		return fmt.Errorf("broken build was accepted: %s", out)
	}
	kept := d.plugin("ct")
	d.cli(true, "plugin", "list")
	st := s.Stats()
	if st.Err != nil {
		return fmt.Errorf("stream broke during upgrades: %w", st.Err)
	}
	d.fact("broken ct build rolled back automatically (%s); %s pid %d kept generation %d",
		strings.TrimSpace(lastLine(out)), kept.Version, kept.Pid, kept.Generation)
	d.fact("stream across both upgrades: %d round trips, %d bytes verified, longest pause %s",
		st.Rounds, st.Bytes, st.MaxGap.Round(time.Millisecond))
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	l := lines[len(lines)-1]
	if i := strings.Index(l, "rolled back"); i >= 0 {
		return l[i:]
	}
	return l
}
