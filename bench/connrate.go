package bench

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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

// serveRR answers every connection with one byte for the one it reads,
// then waits for the client's FIN before closing: the client closes first,
// so TIME_WAIT stays on the client, which reuses it (tcp_tw_reuse).
func serveRR(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: _rrserve ADDR")
	}
	ln, err := net.Listen("tcp", args[0])
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: keep serving
			continue
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			var b [1]byte
			if _, err := io.ReadFull(c, b[:]); err != nil {
				return
			}
			if _, err := c.Write(b[:]); err != nil {
				return
			}
			io.Copy(io.Discard, c)
		}()
	}
}

// connResult is what _connrate prints (JSON, one line).
type connResult struct {
	Conns    int64   `json:"conns"`
	Errors   int64   `json:"errors"`
	Seconds  float64 `json:"seconds"`
	FirstErr string  `json:"first_error,omitempty"`
}

// clientRR opens connections in a loop from several workers for a fixed
// time: dial, write 1 byte, read 1 byte, close. It counts completed
// connections; failed ones are counted apart and do not stop the run.
func clientRR(args []string) error {
	fs := flag.NewFlagSet(helperConnRate, flag.ContinueOnError)
	addrList := fs.String("addr", "", "server address, or several separated by commas: each worker takes them in turn")
	dur := fs.Duration("d", 5*time.Second, "duration")
	workers := fs.Int("workers", 4, "parallel workers")
	if err := fs.Parse(args); err != nil {
		return err
	}
	addrs := strings.Split(*addrList, ",")
	var conns, errs atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(*dur)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: 3 * time.Second}
			var b [1]byte
			for i := w; time.Now().Before(deadline); i++ {
				if err := oneRR(&d, addrs[i%len(addrs)], &b); err != nil {
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
	if s, ok := firstErr.Load().(string); ok {
		res.FirstErr = s
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

func oneRR(d *net.Dialer, addr string, b *[1]byte) error {
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	b[0] = 'x'
	if _, err := c.Write(b[:]); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return err
	}
	return nil
}
