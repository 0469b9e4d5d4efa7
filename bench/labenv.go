package bench

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hotpath/hotpath/lab"
)

const (
	rrPort    = 8080 // connection-rate server in every backend pod
	iperfPort = 5201 // iperf3 server in the first backend pod
)

// labEnv is one lab: a client pod, three backend pods, all routed through
// the node namespace, where a variant installs its service datapath.
type labEnv struct {
	lab      *lab.Lab
	client   *lab.Pod
	backends []*lab.Pod
	// connAddr and tputAddr are what the client dials: a backend for plain
	// routing, a VIP otherwise. connAddr may list several addresses
	// (comma-separated) that the client's workers take in turn.
	connAddr, tputAddr string
	// extraDevices are attached besides the pods' (e.g. the uplink).
	extraDevices []string
	// cleanups run before the lab closes (e.g. hotpathRun.stop).
	cleanups []func()
	untrack  func()
	// opts are the hotpath options of the variant (labfast.go).
	opts hotpathOptions
}

// newLabEnv builds the lab and starts the servers. Offloads are off (as in
// internal/e2e), so every packet crosses the node's datapath as its own skb
// and per-packet costs show. The private bpffs is for a supervisor (the
// hotpath variant, the memory suite).
func newLabEnv(c *Context) (*labEnv, error) { return newLabEnvWith(c, hotpathOptions{}) }

// newLabEnvWith is newLabEnv for a variant with hotpath options.
func newLabEnvWith(c *Context, o hotpathOptions) (*labEnv, error) {
	l, err := lab.New(labOptions(o))
	if err != nil {
		return nil, err
	}
	e := &labEnv{lab: l, client: l.Pods["client"], opts: o}
	e.untrack = track(func() { e.close() })
	for _, n := range []string{"b1", "b2", "b3"} {
		e.backends = append(e.backends, l.Pods[n])
	}
	if err := e.start(c); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

// start tunes the client and starts the servers.
func (e *labEnv) start(c *Context) error {
	// The client opens tens of thousands of connections per run and closes
	// first: give it the whole port range and let it reuse TIME_WAIT ports.
	for key, val := range map[string]string{
		"net/ipv4/ip_local_port_range": "1024 65535",
		"net/ipv4/tcp_tw_reuse":        "1",
	} {
		if err := sysctl(e.client.NS, key, val); err != nil {
			return err
		}
	}
	for _, b := range e.backends {
		if _, err := e.lab.Start(b.NS, "", c.Self, helperServe, fmt.Sprintf(":%d", rrPort)); err != nil {
			return err
		}
	}
	if _, err := e.lab.Start(e.backends[0].NS, "", "iperf3", "-s", "-p", strconv.Itoa(iperfPort)); err != nil {
		return err
	}
	for _, b := range e.backends {
		if err := waitListen(b.NS, rrPort); err != nil {
			return err
		}
	}
	if err := waitListen(e.backends[0].NS, iperfPort); err != nil {
		return err
	}
	e.connAddr = netip.AddrPortFrom(e.backends[0].IP, rrPort).String()
	e.tputAddr = netip.AddrPortFrom(e.backends[0].IP, iperfPort).String()
	return nil
}

// onClose registers f to run, last registered first, before the lab closes.
func (e *labEnv) onClose(f func()) { e.cleanups = append(e.cleanups, f) }

// close is idempotent (lab.Close is), so Abort and a suite's own cleanup
// may both call it.
func (e *labEnv) close() error {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
	e.cleanups = nil
	e.untrack()
	return e.lab.Close()
}

// backendPorts are the backends of the measured connection-rate service.
func (e *labEnv) backendPorts(port uint16) []netip.AddrPort {
	var out []netip.AddrPort
	for _, b := range e.backends {
		out = append(out, netip.AddrPortFrom(b.IP, port))
	}
	return out
}

// directAddrs is the connection-rate address list of the variants without
// a service: every backend in turn. A service spreads its connections over
// the three backends, and three server processes on two CPUs cost more
// than one (about a quarter of the rate on the 2-core VM), so a ceiling
// that dialled one backend would charge that to service translation.
func (e *labEnv) directAddrs() string {
	var all []string
	for _, b := range e.backendPorts(rrPort) {
		all = append(all, b.String())
	}
	return strings.Join(all, ",")
}

// writeFile puts a rules file into the lab directory.
func (e *labEnv) writeFile(name, content string) (string, error) {
	path := filepath.Join(e.lab.Dir, name)
	return path, os.WriteFile(path, []byte(content), 0o600)
}

// connRate runs the connection-rate client in the client pod for d.
func (e *labEnv) connRate(c *Context, addr string, d time.Duration, workers int) (connResult, error) {
	out, err := e.clientExec(c.Self, helperConnRate, "-addr", addr, "-d", d.String(), "-workers", strconv.Itoa(workers))
	var res connResult
	if err != nil {
		return res, err
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return res, fmt.Errorf("connrate output %q: %w", out, err)
	}
	if res.Conns == 0 {
		return res, fmt.Errorf("connrate to %s: no connection completed (%d errors, first: %s)", addr, res.Errors, res.FirstErr)
	}
	return res, nil
}

// iperf runs iperf3 from the client pod and returns the received bit/s.
// The first second (slow start) is omitted from the result.
func (e *labEnv) iperf(addr string, secs, streams int) (float64, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return 0, err
	}
	out, err := e.clientExec("iperf3", "-c", ap.Addr().String(), "-p", strconv.Itoa(int(ap.Port())),
		"-t", strconv.Itoa(secs), "-O", "1", "-P", strconv.Itoa(streams), "-J")
	var res struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if jerr := json.Unmarshal(out, &res); jerr != nil {
		return 0, fmt.Errorf("iperf3 to %s: %v (output: %s)", addr, err, tail(out, 300))
	}
	if res.Error != "" || err != nil {
		return 0, fmt.Errorf("iperf3 to %s: %s %v", addr, res.Error, err)
	}
	return res.End.SumReceived.BitsPerSecond, nil
}

// sysctl writes /proc/sys/<key> from a thread inside ns (net sysctls are
// per network namespace).
func sysctl(ns *lab.NS, key, val string) error {
	err := ns.Do(func() error { return os.WriteFile(filepath.Join("/proc/sys", key), []byte(val), 0o644) })
	if err != nil {
		return fmt.Errorf("sysctl %s=%s in %s: %w", key, val, ns.Name, err)
	}
	return nil
}

// waitListen waits until a TCP socket listens on port inside ns, read from
// the namespace's /proc/net/tcp rather than by connecting, which would
// disturb iperf3's server.
func waitListen(ns *lab.NS, port int) error {
	want := fmt.Sprintf(":%04X", port)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		found := false
		// Dual-stack listeners (Go's ":port", iperf3) show up in tcp6.
		err := ns.Do(func() error {
			for _, file := range []string{"/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"} {
				b, err := os.ReadFile(file)
				if err != nil {
					return err
				}
				for _, line := range strings.Split(string(b), "\n") {
					fields := strings.Fields(line)
					// local_address is field 1, st (0A = LISTEN) field 3.
					if len(fields) > 3 && strings.HasSuffix(fields[1], want) && fields[3] == "0A" {
						found = true
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if found {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on port %d in %s after 10s", port, ns.Name)
}
