package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/hotpath/hotpath/core/plugin"
	"github.com/hotpath/hotpath/core/services"
	"github.com/hotpath/hotpath/supervisor"
)

// configRuns is fixed: the lb plugin never hands out a service id twice
// (CT entries may still name a deleted one) and ids are 16 bits, so the
// services of every run must fit 65535 together.
const configRuns = 3

// maglevChanges is how many one-service backend changes each run times.
const maglevChanges = 10

// configRows times bulk configuration through the real path (CLI → control
// API → supervisor → lb plugin → maps) on the upgrade suite's supervisor:
// `hotpath lb service apply` of 1, 1000 and 10000 random services and of
// 1000 Maglev services (M=16381, 3 backends each), then backend changes of
// one of those Maglev services through the control API. Every run uses new
// VIPs; the Maglev services are deleted at the end of each run, since 1000
// tables of 16381 fill most of lb4_maglev.
func configRows(c *Context, u *upgradeLab) ([]Row, error) {
	type job struct {
		n, backends int
		alg         string
		samples     []float64
	}
	jobs := []*job{{n: 1, backends: 1, alg: "random"}, {n: 1000, backends: 1, alg: "random"},
		{n: 10000, backends: 1, alg: "random"}, {n: 1000, backends: 3, alg: "maglev"}}
	var changes []float64
	for run := range configRuns {
		for k, j := range jobs {
			net := byte(100 + len(jobs)*run + k) // distinct VIP and backend nets per apply
			svcs := fillers(net, net+50, j.n, j.backends)
			took, err := u.h.apply(u.e, fmt.Sprintf("config-%d-%d.json", run, k), serviceArgs(svcs, j.alg))
			if err != nil {
				return nil, fmt.Errorf("apply %d %s services: %w", j.n, j.alg, err)
			}
			j.samples = append(j.samples, took.Seconds())
			c.Logf("config run %d/%d: %d %s services applied in %v", run+1, configRuns, j.n, j.alg, took.Round(time.Millisecond))
			if j.alg != "maglev" {
				continue
			}
			cs, err := maglevChangeTimes(u.h, svcs[len(svcs)/2])
			if err != nil {
				return nil, err
			}
			changes = append(changes, cs...)
			c.Logf("config run %d/%d: %d backend changes of one maglev service, median %v", run+1, configRuns, len(cs), time.Duration(Median(cs)*1e9).Round(time.Microsecond))
			if err := delServices(u.h, svcs); err != nil {
				return nil, err
			}
		}
	}
	var rows []Row
	for _, j := range jobs {
		what := fmt.Sprintf("random, %d backend each", j.backends)
		if j.alg == "maglev" {
			what = fmt.Sprintf("maglev M=16381, %d backends each", j.backends)
		}
		row := Row{
			Name: fmt.Sprintf("configure %s through hotpath: one `hotpath lb service apply` (%s), CLI wall time incl. process start; %d runs, new VIPs each",
				serviceCount(j.n), what, configRuns),
			Unit: UnitSeconds, Samples: j.samples,
		}
		if j.n > 1 {
			row.Note = fmt.Sprintf("%s per service", format(Median(j.samples)/float64(j.n), UnitSeconds))
		}
		if j.alg == "maglev" {
			row.Target = Below(1).Because("see the maglev suite for the table build, plugins/lb/README.md for the kernel side")
			row.Note += "; every table is written into the one lb4_maglev array (one memory copy) and published by its service value: no map-in-map update, no RCU wait per table"
		}
		rows = append(rows, row)
	}
	rows = append(rows, Row{
		Name: fmt.Sprintf("backend change of one maglev service among 1000 (M=16381; backend-add/-del alternately: new table built, written, published), control API round trip; %d changes per run", maglevChanges),
		Unit: UnitSeconds, Samples: changes, Tail: true, Target: Below(0.005),
	})
	return rows, nil
}

// maglevChangeTimes adds and removes a fourth backend of svc, alternately,
// through the control API, and returns each round trip in seconds.
func maglevChangeTimes(h *hotpathRun, svc service) ([]float64, error) {
	vip := svc.vip.String() + "/tcp"
	extra := netip.AddrPortFrom(svc.backends[0].Addr(), 8083).String() // fillers use 8080..8082
	var out []float64
	for i := range maglevChanges {
		cmd := "backend-add"
		if i%2 == 1 {
			cmd = "backend-del"
		}
		took, err := apiInvoke(h, "lb", cmd, services.BackendArgs{VIP: vip, Backend: services.BackendArg{Address: extra}})
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", cmd, vip, err)
		}
		out = append(out, took.Seconds())
	}
	return out, nil
}

// delServices deletes svcs through the control API.
func delServices(h *hotpathRun, svcs []service) error {
	for _, s := range svcs {
		if _, err := apiInvoke(h, "lb", "service-del", services.ServiceArgs{VIP: s.vip.String() + "/tcp"}); err != nil {
			return fmt.Errorf("delete %s: %w", s.vip, err)
		}
	}
	return nil
}

// apiInvoke sends one plugin command to the supervisor's control socket,
// as the CLI does but without starting a process, and returns the round
// trip.
func apiInvoke(h *hotpathRun, name, command string, args any) (time.Duration, error) {
	raw, err := json.Marshal(args)
	if err != nil {
		return 0, err
	}
	body, err := json.Marshal(plugin.InvokeRequest{Command: command, Args: raw})
	if err != nil {
		return 0, err
	}
	sock := supervisor.SocketPath(h.StateDir)
	cl := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	defer cl.CloseIdleConnections()
	start := time.Now()
	resp, err := cl.Post("http://hotpath/v1/plugins/"+name+"/invoke", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	took := time.Since(start)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(answer))
	}
	return took, nil
}
