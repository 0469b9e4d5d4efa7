package demo

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// SockClientArg, as the demo binary's first argument, runs SockClient
// instead of the demo: the demo starts itself this way in the client pod,
// once inside the lab's cgroup and once outside, because socket LB applies
// to the processes of a cgroup and the demo's own dials are threads of a
// process that must stay outside it.
const SockClientArg = "sock-client"

// SockClient connects to addr n times (args: ADDR N) and prints one line
// per connection: local address, getpeername(2) and the greeting the
// server sent.
func SockClient(args []string, out io.Writer) error {
	if len(args) != 2 {
		return errors.New("sock-client: want ADDR N")
	}
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 1 {
		return fmt.Errorf("sock-client: count %q: want a positive number", args[1])
	}
	for i := 0; i < n; i++ {
		line, err := askPeer(args[0])
		if err != nil {
			return fmt.Errorf("sock-client: connection %d to %s: %w", i, args[0], err)
		}
		fmt.Fprintln(out, line)
	}
	return nil
}

func askPeer(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return "", err
	}
	var sa syscall.Sockaddr
	var serr error
	if err := raw.Control(func(fd uintptr) { sa, serr = syscall.Getpeername(int(fd)) }); err != nil {
		return "", err
	}
	in, ok := sa.(*syscall.SockaddrInet4)
	if serr != nil || !ok {
		return "", fmt.Errorf("getpeername: %v (%T)", serr, sa)
	}
	peer := net.JoinHostPort(net.IP(in.Addr[:]).String(), strconv.Itoa(in.Port))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	name, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read greeting: %w", err)
	}
	return fmt.Sprintf("%s %s %s", c.LocalAddr(), peer, strings.TrimSpace(name)), nil
}
