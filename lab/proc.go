package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Proc is a long-running process started by Lab.Start.
type Proc struct {
	Cmd  *exec.Cmd
	Pid  int
	Name string // program as passed to Start
	Log  string // stdout and stderr go here

	done chan struct{} // closed once the process has been reaped
	err  error         // exit status, valid after done
}

// Start runs name with args inside ns and returns without waiting. stdout and
// stderr go to logPath (default <lab dir>/<name>.<n>.log). Close stops the
// process: SIGTERM, then SIGKILL after a grace period.
//
// The process is run via `ip netns exec`, which execs the program, so Pid is
// the program itself. It also gets its own mount namespace with a fresh /sys
// (empty /sys/fs/bpf; use Lab.BPFFS). Pdeathsig kills it if the test binary
// dies before Close runs.
func (l *Lab) Start(ns *NS, logPath string, name string, args ...string) (*Proc, error) {
	return l.start(ns, logPath, false, name, args)
}

// StartInCgroup is Start with the process born in the lab's cgroup
// (Options.Cgroup): clone3 with CLONE_INTO_CGROUP, so not one of its
// sockets is created outside it.
func (l *Lab) StartInCgroup(ns *NS, logPath string, name string, args ...string) (*Proc, error) {
	return l.start(ns, logPath, true, name, args)
}

func (l *Lab) start(ns *NS, logPath string, inCgroup bool, name string, args []string) (*Proc, error) {
	if ns == nil {
		return nil, errors.New("start: nil namespace")
	}
	// Fail here rather than leave a process that exits right away.
	if _, err := exec.LookPath(name); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("start %s: lab closed", name)
	}
	if inCgroup && l.Cgroup == "" {
		return nil, fmt.Errorf("start %s: lab has no cgroup (Options.Cgroup)", name)
	}
	if logPath == "" {
		l.nlogs++
		logPath = filepath.Join(l.Dir, fmt.Sprintf("%s.%d.log", filepath.Base(name), l.nlogs))
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: open log: %w", name, err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if inCgroup {
		cg, err := l.bornInCgroup(cmd)
		if err != nil {
			logf.Close()
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		defer cg.Close()
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s in %s: %w", name, ns.Name, err)
	}
	p := &Proc{Cmd: cmd, Pid: cmd.Process.Pid, Name: name, Log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	l.procs = append(l.procs, p)
	return p, nil
}

// Kill sends sig to the process. Signals go through a pidfd (os.Process),
// so a reused pid is never hit. Returns os.ErrProcessDone once it exited.
func (p *Proc) Kill(sig os.Signal) error {
	if p.Exited() {
		return os.ErrProcessDone
	}
	if err := p.Cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s (pid %d): %w", p.Name, p.Pid, err)
	}
	return nil
}

// Wait waits up to timeout for the process to exit and returns its exit
// status (nil for exit code 0). If it is still running the error wraps
// os.ErrDeadlineExceeded.
func (p *Proc) Wait(timeout time.Duration) error {
	if p.Exited() { // select below picks at random when both are ready
		return p.err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err
	case <-t.C:
		return fmt.Errorf("%s (pid %d) still running after %v: %w", p.Name, p.Pid, timeout, os.ErrDeadlineExceeded)
	}
}

// Exited reports whether the process has exited and been reaped.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM, waits up to grace, then SIGKILL. An exit status
// caused by the signal is not an error; failing to end the process is.
func (p *Proc) Stop(grace time.Duration) error {
	if p.Exited() {
		return nil
	}
	if err := p.Kill(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	if err := p.Wait(grace); !errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	if err := p.Kill(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	if err := p.Wait(5 * time.Second); errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	return nil
}
