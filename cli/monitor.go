package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/hotpath/hotpath/core/monitor"
	"github.com/hotpath/hotpath/supervisor"
)

// monitorCommand streams datapath events from the supervisor, like `cilium
// monitor`. The datapath writes events only while a monitor is connected.
func monitorCommand() *cli.Command {
	return &cli.Command{
		Name:  "monitor",
		Usage: "stream datapath events: drops (every stage, every reason), traces, policy verdicts",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "type", Aliases: []string{"t"}, Usage: "drop, trace or policy-verdict; repeat for more (default: all)"},
			outputFlag,
		},
		Action: monitorRun,
	}
}

func monitorRun(c *cli.Context) error {
	if c.NArg() != 0 {
		return fmt.Errorf("monitor: takes no arguments")
	}
	o, err := output(c)
	if err != nil {
		return err
	}
	types := c.StringSlice("type")
	if _, err := monitor.Flags(types); err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	q := url.Values{"type": types}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	sock := supervisor.SocketPath(global(c, "state-dir"))
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	req, err := http.NewRequestWithContext(ctx, "GET", "http://hotpath/v1/monitor?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("supervisor not reachable at %s: %w", sock, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("monitor: %s", e.Error)
	}
	if o == "table" {
		fmt.Fprintln(os.Stderr, "Listening for events... Press Ctrl-C to quit")
	}
	sc := bufio.NewScanner(resp.Body)
	out := bufio.NewWriter(os.Stdout)
	for sc.Scan() {
		if o == "json" {
			out.Write(sc.Bytes())
			out.WriteByte('\n')
		} else {
			var ev monitor.Event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				return fmt.Errorf("monitor: decode event: %w", err)
			}
			monitor.Write(out, ev)
		}
		if err := out.Flush(); err != nil {
			return nil // stdout closed
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return sc.Err()
}
