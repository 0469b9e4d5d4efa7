package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hotpath/hotpath/lab"
)

const (
	// udpInterval paces the probe: about 100 datagrams a second, so that
	// every swap of the upgrade suite has datagrams in flight around it.
	udpInterval = 10 * time.Millisecond
	// udpWait is how long one datagram's echo may take before it counts as
	// lost; far above a lab round trip (tens of µs).
	udpWait = 500 * time.Millisecond
)

// udpProbe sends numbered datagrams through a UDP VIP to an echo server and
// counts those whose echo did not come back intact. One connected socket:
// one flow, translated by its service entry for its whole life.
type udpProbe struct {
	conn net.Conn

	mu         sync.Mutex
	sent, lost int

	stop, done chan struct{}
}

func startUDPProbe(ns *lab.NS, addr string) (*udpProbe, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := ns.Dial(ctx, "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("udp probe to %s: %w", addr, err)
	}
	u := &udpProbe{conn: conn, stop: make(chan struct{}), done: make(chan struct{})}
	go u.run()
	return u, nil
}

func (u *udpProbe) run() {
	defer close(u.done)
	buf := make([]byte, 256)
	tick := time.NewTicker(udpInterval)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-u.stop:
			return
		case <-tick.C:
		}
		msg := []byte("bench datagram " + strconv.Itoa(i))
		u.conn.SetDeadline(time.Now().Add(udpWait))
		_, err := u.conn.Write(msg)
		n := 0
		// A late echo of an earlier datagram is skipped, not counted twice.
		for err == nil {
			if n, err = u.conn.Read(buf); err == nil && bytes.Equal(buf[:n], msg) {
				break
			}
		}
		u.mu.Lock()
		u.sent++
		if err != nil {
			u.lost++
		}
		u.mu.Unlock()
	}
}

// counts returns the datagrams sent and lost so far.
func (u *udpProbe) counts() (sent, lost int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.sent, u.lost
}

// close stops the probe (idempotent).
func (u *udpProbe) close() {
	select {
	case <-u.stop:
	default:
		close(u.stop)
		<-u.done
		u.conn.Close()
	}
}
