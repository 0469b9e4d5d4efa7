package bench

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// The connection-rate client and server speak to the kernel directly, one
// OS thread per worker and plain system calls, as netperf's TCP_CRR does:
// Go's netpoller (epoll, goroutine wake-ups, deadline timers) would add
// about as much CPU per connection as the node's forwarding costs, and
// would dilute every datapath difference the rows are there to show.

// rawTimeout bounds each wait of one connection (connect, read).
const rawTimeout = 3 * time.Second

// rawListen opens a listening socket on addr with SO_REUSEPORT, so that
// every server thread has its own accept queue.
func rawListen(addr netip.AddrPort) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	for _, opt := range []int{unix.SO_REUSEADDR, unix.SO_REUSEPORT} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, 1); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("setsockopt %d: %w", opt, err)
		}
	}
	sa := &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind %s: %w", addr, err)
	}
	if err := unix.Listen(fd, 1024); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("listen %s: %w", addr, err)
	}
	return fd, nil
}

// rawServeLoop accepts on fd forever and answers each connection inline:
// one byte back for the one read, then it waits for the client's FIN, so
// the client closes first and TIME_WAIT stays on its side.
func rawServeLoop(fd int) error {
	runtime.LockOSThread()
	var b [64]byte
	for {
		c, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
		if err != nil {
			if err == unix.EINTR || err == unix.ECONNABORTED || err == unix.EMFILE || err == unix.ENFILE {
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		rawAnswer(c, b[:])
		unix.Close(c)
	}
}

// rawAnswer serves one connection on a blocking socket, with a receive
// timeout so that a lost client cannot hold the thread.
func rawAnswer(c int, b []byte) {
	tv := unix.NsecToTimeval(int64(10 * time.Second))
	unix.SetsockoptTimeval(c, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	if n, err := retryEINTR(func() (int, error) { return unix.Read(c, b[:1]) }); err != nil || n != 1 {
		return
	}
	if _, err := retryEINTR(func() (int, error) { return unix.Write(c, b[:1]) }); err != nil {
		return
	}
	for {
		n, err := retryEINTR(func() (int, error) { return unix.Read(c, b) })
		if err != nil || n == 0 {
			return
		}
	}
}

// rawOne makes one connection: connect, write 1 byte, read 1 byte, close.
// The socket is non-blocking and each wait is one poll(2), so a lost
// packet costs a timeout, never a stuck worker.
func rawOne(sa *unix.SockaddrInet4) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, sa); err != nil && err != unix.EINPROGRESS {
		return fmt.Errorf("connect: %w", err)
	}
	if err := rawWait(fd, unix.POLLOUT); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || soErr != 0 {
		if err == nil {
			err = unix.Errno(soErr)
		}
		return fmt.Errorf("connect: %w", err)
	}
	b := [1]byte{'x'}
	if _, err := unix.Write(fd, b[:]); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	for {
		n, err := unix.Read(fd, b[:])
		if n == 1 {
			return nil
		}
		if n == 0 && err == nil {
			return errors.New("read: connection closed before the answer")
		}
		if err != unix.EAGAIN {
			return fmt.Errorf("read: %w", err)
		}
		if err := rawWait(fd, unix.POLLIN); err != nil {
			return fmt.Errorf("read: %w", err)
		}
	}
}

// rawWait polls fd for events, within rawTimeout.
func rawWait(fd int, events int16) error {
	deadline := time.Now().Add(rawTimeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return unix.ETIMEDOUT
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
		n, err := unix.Poll(fds, int(left.Milliseconds())+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 1 {
			return nil
		}
	}
}

// retryEINTR repeats a system call the runtime's signals interrupted.
func retryEINTR(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if err != unix.EINTR {
			return n, err
		}
	}
}
