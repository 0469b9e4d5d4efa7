package bench

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Helper subcommands: the bench binary re-runs itself inside lab
// namespaces (via `ip netns exec`) as the connection-rate server and
// client, so their sockets live natively in the pod's namespace and their
// CPU time is a process of its own, like a real client and server.
const (
	helperServe    = "_rrserve"
	helperConnRate = "_connrate"
)

// IsHelper tells main that arg names a helper subcommand.
func IsHelper(arg string) bool { return arg == helperServe || arg == helperConnRate }

// Helper runs a helper subcommand and returns the exit code.
func Helper(name string, args []string) int {
	var err error
	switch name {
	case helperServe:
		err = serveRR(args)
	case helperConnRate:
		err = clientRR(args)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench %s: %v\n", name, err)
		return 1
	}
	return 0
}

// serveRR answers connections on ADDR (":port" for every address) from one
// thread per client worker (connWorkers), each with a listening socket of
// its own: a thread serves one connection at a time, and no worker should
// wait for another's.
func serveRR(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: _rrserve ADDR")
	}
	addr, err := parseServeAddr(args[0])
	if err != nil {
		return err
	}
	errc := make(chan error, connWorkers)
	for range connWorkers {
		fd, err := rawListen(addr)
		if err != nil {
			return err
		}
		go func() { errc <- rawServeLoop(fd) }()
	}
	return <-errc
}

// parseServeAddr reads "IP:port" or ":port" (every address).
func parseServeAddr(s string) (netip.AddrPort, error) {
	if strings.HasPrefix(s, ":") {
		s = "0.0.0.0" + s
	}
	a, err := netip.ParseAddrPort(s)
	if err != nil || !a.Addr().Is4() {
		return netip.AddrPort{}, fmt.Errorf("server address %q: want IPv4:port or :port", s)
	}
	return a, nil
}

// connResult is what _connrate prints (JSON, one line).
type connResult struct {
	Conns   int64   `json:"conns"`
	Errors  int64   `json:"errors"`
	Seconds float64 `json:"seconds"`
	// Busy is the CPU time the whole machine spent busy over the same
	// window (cpuBusy; 0 where /proc/stat could not be read).
	Busy     float64 `json:"busy_seconds"`
	FirstErr string  `json:"first_error,omitempty"`
}

// clientRR opens connections in a loop from several workers for a fixed
// time: connect, write 1 byte, read 1 byte, close (connraw.go). It counts completed
// connections; failed ones are counted apart and do not stop the run.
func clientRR(args []string) error {
	fs := flag.NewFlagSet(helperConnRate, flag.ContinueOnError)
	addrList := fs.String("addr", "", "server address, or several separated by commas: each worker takes them in turn")
	dur := fs.Duration("d", 5*time.Second, "duration")
	workers := fs.Int("workers", 4, "parallel workers")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var addrs []*unix.SockaddrInet4
	for _, a := range strings.Split(*addrList, ",") {
		ap, err := netip.ParseAddrPort(a)
		if err != nil || !ap.Addr().Is4() {
			return fmt.Errorf("address %q: want IPv4:port", a)
		}
		addrs = append(addrs, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()})
	}
	var conns, errs atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(*dur)
	start := time.Now()
	busy0, busyErr := cpuBusy()
	var wg sync.WaitGroup
	for w := range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One OS thread per worker, as a process of netperf's would be.
			runtime.LockOSThread()
			for i := w; time.Now().Before(deadline); i++ {
				if err := rawOne(addrs[i%len(addrs)]); err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				conns.Add(1)
			}
		}()
	}
	wg.Wait()
	res := connResult{Conns: conns.Load(), Errors: errs.Load(), Seconds: time.Since(start).Seconds()}
	if busy1, err := cpuBusy(); err == nil && busyErr == nil {
		res.Busy = busy1 - busy0
	}
	if s, ok := firstErr.Load().(string); ok {
		res.FirstErr = s
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
