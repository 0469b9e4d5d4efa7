package lab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Stream is a long-lived TCP connection carrying a numbered byte pattern
// through an echo server, checking every byte that comes back and recording
// the longest pause between two round trips.
type Stream struct {
	Conn net.Conn

	mu     sync.Mutex
	bytes  int64
	rounds int64
	maxGap time.Duration
	err    error
	stop   chan struct{}
	done   chan struct{}
}

// StreamStats is a Stream's result.
type StreamStats struct {
	Bytes  int64         // echoed and verified
	Rounds int64         // round trips
	MaxGap time.Duration // longest pause between two round trips
	Err    error
}

// StartStream dials addr from ns and exchanges chunk-sized messages every
// interval until Stop.
func StartStream(ctx context.Context, ns *NS, addr string, chunk int, interval time.Duration) (*Stream, error) {
	conn, err := ns.Dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return StreamOn(conn, chunk, interval), nil
}

// StreamOn runs a stream over an established connection, e.g. one whose
// greeting the caller has read already.
func StreamOn(conn net.Conn, chunk int, interval time.Duration) *Stream {
	s := &Stream{Conn: conn, stop: make(chan struct{}), done: make(chan struct{})}
	go s.run(chunk, interval)
	return s
}

func (s *Stream) run(chunk int, interval time.Duration) {
	defer close(s.done)
	out := make([]byte, chunk)
	in := make([]byte, chunk)
	last := time.Now()
	var seq byte
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		for i := range out {
			out[i] = seq + byte(i)
		}
		seq++
		s.Conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := s.Conn.Write(out); err != nil {
			s.fail(fmt.Errorf("write after %d rounds: %w", s.Stats().Rounds, err))
			return
		}
		if _, err := io.ReadFull(s.Conn, in); err != nil {
			s.fail(fmt.Errorf("read after %d rounds: %w", s.Stats().Rounds, err))
			return
		}
		if !bytes.Equal(in, out) {
			s.fail(fmt.Errorf("echo mismatch in round %d", s.Stats().Rounds))
			return
		}
		now := time.Now()
		s.mu.Lock()
		s.bytes += int64(chunk)
		s.rounds++
		if g := now.Sub(last); g > s.maxGap {
			s.maxGap = g
		}
		s.mu.Unlock()
		last = now
		if interval > 0 {
			time.Sleep(interval)
		}
	}
}

func (s *Stream) fail(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

// Stats reports progress so far.
func (s *Stream) Stats() StreamStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return StreamStats{Bytes: s.bytes, Rounds: s.rounds, MaxGap: s.maxGap, Err: s.err}
}

// Stop ends the exchange and closes the connection.
func (s *Stream) Stop() StreamStats {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	s.Conn.Close()
	return s.Stats()
}

// LocalAddr is the client side of the stream ("ip:port").
func (s *Stream) LocalAddr() string { return s.Conn.LocalAddr().String() }
