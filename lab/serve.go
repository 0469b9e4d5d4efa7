package lab

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Server is an in-process TCP or UDP test server listening inside a
// namespace. A lab closes its servers on Close; closing earlier is fine.
type Server struct {
	// Addr is the bound address, with the real port if addr had port 0.
	Addr net.Addr

	stop func() error
	once sync.Once
	err  error
}

// Close stops the server, closes its connections and waits for its
// goroutines. It is idempotent.
func (s *Server) Close() error {
	s.once.Do(func() { s.err = s.stop() })
	return s.err
}

// EchoServer serves TCP on addr inside ns; every connection gets its bytes
// echoed back.
func EchoServer(ns *NS, addr string) (*Server, error) { return serveTCP(ns, addr, nil) }

// ServeName serves TCP on addr inside ns; every connection first receives
// name+"\n" and then has its bytes echoed back. Use it to see which backend a
// connection reached (NS.AskName).
func ServeName(ns *NS, addr, name string) (*Server, error) {
	return serveTCP(ns, addr, func(net.Addr) []byte { return []byte(name + "\n") })
}

// UDPEcho serves UDP on addr inside ns; every datagram is sent back.
func UDPEcho(ns *NS, addr string) (*Server, error) { return serveUDP(ns, addr, nil) }

// UDPServeName serves UDP on addr inside ns; every datagram is answered with
// name+"\n" followed by the datagram.
func UDPServeName(ns *NS, addr, name string) (*Server, error) {
	return serveUDP(ns, addr, func(net.Addr) []byte { return []byte(name + "\n") })
}

func serveTCP(ns *NS, addr string, greeting func(peer net.Addr) []byte) (*Server, error) {
	ln, err := ns.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	var (
		mu     sync.Mutex
		conns  = map[net.Conn]bool{}
		closed bool
		wg     sync.WaitGroup
	)
	handle := func(c net.Conn) {
		defer wg.Done()
		defer func() {
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			c.Close()
		}()
		if greeting != nil {
			if _, err := c.Write(greeting(c.RemoteAddr())); err != nil {
				return
			}
		}
		io.Copy(c, c)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil { // e.g. EMFILE: back off, keep serving
				time.Sleep(10 * time.Millisecond)
				continue
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				c.Close()
				return
			}
			conns[c] = true
			wg.Add(1)
			mu.Unlock()
			go handle(c)
		}
	}()
	s := &Server{Addr: ln.Addr(), stop: func() error {
		err := ln.Close()
		mu.Lock()
		closed = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
		return err
	}}
	if err := register(ns, s); err != nil {
		return nil, err
	}
	return s, nil
}

func serveUDP(ns *NS, addr string, prefix func(peer net.Addr) []byte) (*Server, error) {
	pc, err := ns.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			var reply []byte
			if prefix != nil {
				reply = prefix(from)
			}
			reply = append(reply, buf[:n]...)
			pc.WriteTo(reply, from)
		}
	}()
	s := &Server{Addr: pc.LocalAddr(), stop: func() error {
		err := pc.Close()
		<-done
		return err
	}}
	if err := register(ns, s); err != nil {
		return nil, err
	}
	return s, nil
}

// register hands s to the lab so Lab.Close stops it; if the lab is already
// closed, s is stopped right away.
func register(ns *NS, s *Server) error {
	if ns.lab == nil {
		return nil
	}
	if err := ns.lab.track(s); err != nil {
		s.Close()
		return err
	}
	return nil
}

// ServePeer serves TCP on addr in ns: each connection first receives the
// address and port it came from as the server sees it ("192.0.2.1:40000\n"),
// then an echo. A test reads the line with AskName to see what a NAT made of
// the client.
func ServePeer(ns *NS, addr string) (*Server, error) {
	return serveTCP(ns, addr, func(peer net.Addr) []byte { return []byte(peer.String() + "\n") })
}

// UDPServePeer answers each datagram with the sender's address and port as
// the server sees it, a newline, and the datagram.
func UDPServePeer(ns *NS, addr string) (*Server, error) {
	return serveUDP(ns, addr, func(peer net.Addr) []byte { return []byte(peer.String() + "\n") })
}
