package lab

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// Echo dials addr ("tcp" or "udp") from inside n, sends payload and checks
// that an echo server (EchoServer, UDPEcho) sends exactly it back. UDP sends
// one datagram and does not retry; give ctx a deadline.
func (n *NS) Echo(ctx context.Context, network, addr string, payload []byte) error {
	c, err := n.dialCtx(ctx, network, addr)
	if err != nil {
		return err
	}
	defer c.close()
	// Write concurrently: with TCP, a payload larger than the socket buffers
	// would otherwise deadlock against the server's echo.
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		werr <- err
	}()
	var got []byte
	if strings.HasPrefix(network, "udp") {
		buf := make([]byte, 64<<10)
		var k int
		k, err = c.Read(buf)
		got = buf[:k]
	} else {
		got = make([]byte, len(payload))
		_, err = io.ReadFull(c, got)
	}
	if err == nil {
		err = <-werr
	}
	if err != nil {
		return n.ctxErr(ctx, fmt.Errorf("echo %s %s from %s: %w", network, addr, n.Name, err))
	}
	if !bytes.Equal(got, payload) {
		return fmt.Errorf("echo %s %s from %s: reply differs (%d bytes sent, %d received)", network, addr, n.Name, len(payload), len(got))
	}
	return nil
}

// AskName returns the name announced by a ServeName (tcp) or UDPServeName
// (udp) server at addr, asked from inside n.
func (n *NS) AskName(ctx context.Context, network, addr string) (string, error) {
	c, err := n.dialCtx(ctx, network, addr)
	if err != nil {
		return "", err
	}
	defer c.close()
	if strings.HasPrefix(network, "udp") {
		if _, err := c.Write([]byte("?")); err != nil {
			return "", fmt.Errorf("ask name %s %s from %s: %w", network, addr, n.Name, err)
		}
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", n.ctxErr(ctx, fmt.Errorf("ask name %s %s from %s: %w", network, addr, n.Name, err))
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// ctxConn is a conn whose reads and writes are unblocked when ctx ends.
type ctxConn struct {
	net.Conn
	stop func() bool
}

func (c ctxConn) close() {
	c.stop()
	c.Conn.Close()
}

func (n *NS) dialCtx(ctx context.Context, network, addr string) (ctxConn, error) {
	c, err := n.Dial(ctx, network, addr)
	if err != nil {
		return ctxConn{}, fmt.Errorf("dial %s %s from %s: %w", network, addr, n.Name, err)
	}
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	return ctxConn{Conn: c, stop: stop}, nil
}

// ctxErr says that ctx ended when that is why err happened.
func (n *NS) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	return err
}

// PeerName is getpeername(2) of an IPv4 connection, as the application
// sees it (with socket LB, what the cgroup programs show it).
func PeerName(conn syscall.Conn) (netip.AddrPort, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	var sa syscall.Sockaddr
	var serr error
	if err := raw.Control(func(fd uintptr) { sa, serr = syscall.Getpeername(int(fd)) }); err != nil {
		return netip.AddrPort{}, err
	}
	if serr != nil {
		return netip.AddrPort{}, fmt.Errorf("getpeername: %w", serr)
	}
	in, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("getpeername: %T, want IPv4", sa)
	}
	return netip.AddrPortFrom(netip.AddrFrom4(in.Addr), uint16(in.Port)), nil
}
