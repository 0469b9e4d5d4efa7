package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"

	"github.com/hashicorp/go-plugin/runner"
	"golang.org/x/sys/unix"
)

// errGone means the pid names no process (any more).
var errGone = errors.New("no such process")

// proc watches one plugin process through a pidfd. Unlike kill(pid, 0),
// which go-plugin polls once a second for reattached plugins, a pidfd cannot
// be fooled by pid reuse, reports a zombie as exited (an orphaned plugin may
// never be reaped if pid 1 does not reap), and wakes us the moment the
// process exits.
type proc struct {
	pid      int
	f        *os.File
	done     chan struct{} // closed when the process has exited
	released chan struct{} // closed when we stop watching
	once     sync.Once
}

// openProc opens a pidfd for pid, which need not be our child.
func openProc(pid int) (*proc, error) {
	// Non-blocking, so that os.NewFile registers it with the runtime poller
	// and the watcher parks a goroutine rather than a thread.
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if errors.Is(err, unix.ESRCH) {
		return nil, errGone
	}
	if err != nil {
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	p := &proc{
		pid:      pid,
		f:        os.NewFile(uintptr(fd), "pidfd:"+strconv.Itoa(pid)),
		done:     make(chan struct{}),
		released: make(chan struct{}),
	}
	rc, err := p.f.SyscallConn()
	if err != nil {
		p.f.Close()
		return nil, fmt.Errorf("pidfd %d: %w", pid, err)
	}
	go func() {
		// A pidfd turns readable when the process exits; Read parks until
		// then, or fails once release closes the file.
		if rc.Read(func(fd uintptr) bool { return readable(int(fd)) }) == nil {
			close(p.done)
		}
	}()
	return p, nil
}

// childProc watches a child we just started, given the pidfd that clone
// returned for it (and which it closes). That pidfd cannot be used itself:
// Go's os.Process waits on a dup of it, which shares its file status flags,
// and a non-blocking pidfd makes that waitid fail with EAGAIN, leaving a
// zombie. So open a second one and use the first to prove that the pid had
// not been reaped and reused in between.
func childProc(pid, clonefd int) (*proc, error) {
	defer unix.Close(clonefd)
	p, err := openProc(pid)
	if errors.Is(err, errGone) {
		return nil, errors.New("exited right after the handshake")
	}
	if err != nil {
		return nil, err
	}
	if readable(clonefd) {
		// Our child has exited; the new pidfd may name another process.
		p.release()
		return nil, errors.New("exited right after the handshake")
	}
	return p, nil
}

func readable(fd int) bool {
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err != nil || n > 0
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process the pidfd refers to, never to a process
// that reused its pid.
func (p *proc) signal(sig syscall.Signal) error {
	rc, err := p.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.PidfdSendSignal(int(fd), sig, nil, 0)
	}); err != nil {
		return err
	}
	if errors.Is(serr, unix.ESRCH) {
		return nil // already gone
	}
	return serr
}

// release stops watching; done stays open unless the process had exited.
func (p *proc) release() {
	p.once.Do(func() {
		close(p.released)
		p.f.Close()
	})
}

// attached is go-plugin's view of an adopted plugin process. go-plugin's own
// version polls kill(pid, 0) once a second, which never sees an unreaped
// zombie exit, so Kill and Exited hang or lie for orphaned plugins.
type attached struct{ p *proc }

var _ runner.AttachedRunner = attached{}

func (a attached) Wait(context.Context) error {
	select {
	case <-a.p.done:
	case <-a.p.released:
	}
	return nil
}

func (a attached) Kill(context.Context) error { return a.p.signal(syscall.SIGKILL) }
func (a attached) ID() string                 { return strconv.Itoa(a.p.pid) }

func (attached) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (attached) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

// socketOwner returns the pid that listens on a unix socket, from the
// socket's peer credentials. Adopt uses it to prove that a persisted pid and
// socket still belong together.
func socketOwner(address string) (int, error) {
	conn, err := net.DialTimeout("unix", address, dialTimeout)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	rc, err := conn.(*net.UnixConn).SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, fmt.Errorf("peer credentials: %w", cerr)
	}
	return int(cred.Pid), nil
}
