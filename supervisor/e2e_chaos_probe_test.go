package supervisor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hotpath/hotpath/internal/e2e"
)

// probe sends numbered datagrams through a UDP VIP from one connected
// socket and checks every answer: it must come from the VIP (the connected
// socket drops anything else), carry the datagram back, and always come
// from the backend that answered first (the flow's CT_SERVICE entry pins
// it). An answer that breaks either rule is a wrong delivery.
type probe struct {
	conn          net.Conn
	mu            sync.Mutex
	sent, lost    int
	wrong         []string
	backend       string
	stop, stopped chan struct{}
}

func startProbe(env *e2e.Env, vip string) (*probe, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := env.Lab.Pods["client"].Dial(ctx, "udp", vip)
	if err != nil {
		return nil, err
	}
	p := &probe{conn: conn, stop: make(chan struct{}), stopped: make(chan struct{})}
	go p.run()
	return p, nil
}

func (p *probe) run() {
	defer close(p.stopped)
	buf := make([]byte, 512)
	for i := 0; ; i++ {
		select {
		case <-p.stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		msg := []byte("probe " + strconv.Itoa(i))
		p.conn.SetDeadline(time.Now().Add(3 * time.Second))
		_, err := p.conn.Write(msg)
		var answer []byte
		for err == nil {
			var n int
			n, err = p.conn.Read(buf)
			answer = buf[:n]
			if err == nil && !stale(answer, i) {
				break
			}
		}
		p.record(msg, answer, err)
	}
}

// stale tells an answer to an earlier datagram (that arrived after its
// wait ended) from the answer to datagram i.
func stale(answer []byte, i int) bool {
	_, rest, ok := bytes.Cut(answer, []byte("\nprobe "))
	if !ok {
		return false
	}
	n, err := strconv.Atoi(string(rest))
	return err == nil && n < i
}

func (p *probe) record(msg, answer []byte, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent++
	if err != nil {
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			p.wrong = append(p.wrong, fmt.Sprintf("%s: %v", msg, err)) // e.g. ECONNREFUSED
		} else {
			p.lost++
		}
		return
	}
	name, body, ok := bytes.Cut(answer, []byte("\n"))
	switch {
	case !ok || !bytes.Equal(body, msg):
		p.wrong = append(p.wrong, fmt.Sprintf("%s answered %q", msg, answer))
	case p.backend == "":
		p.backend = string(name)
	case p.backend != string(name):
		p.wrong = append(p.wrong, fmt.Sprintf("%s answered by %s, the flow started on %s", msg, name, p.backend))
	}
}

// Stop ends the probe; it is idempotent.
func (p *probe) Stop() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
		<-p.stopped
		p.conn.Close()
	}
}

func (p *probe) counts() (sent, lost int, wrong []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent, p.lost, append([]string(nil), p.wrong...)
}
