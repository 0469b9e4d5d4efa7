package lab

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A lab's cgroup (Options.Cgroup): a cgroup v2 directory of its own for
// socket-level programs to attach to, so that they apply to the processes a
// test puts there and to nothing else on the machine. The lab mounts the
// cgroup2 hierarchy under its directory (<dir>/cgroup2), not under /sys,
// because `ip netns exec` remounts /sys and a supervisor started by the lab
// must find the path. Close moves this process back where it was, removes
// the cgroup and unmounts the hierarchy.

// cgroupState is the lab's cgroup bookkeeping, guarded by Lab.mu.
type cgroupState struct {
	mount   string // <dir>/cgroup2, "" when not mounted
	origin  string // this process's cgroup before EnterCgroup, "" when not inside
	created bool
}

func (l *Lab) setupCgroup() error {
	mount := filepath.Join(l.Dir, "cgroup2")
	if err := os.Mkdir(mount, 0o700); err != nil {
		return fmt.Errorf("create cgroup2 dir: %w", err)
	}
	if err := unix.Mount("cgroup2", mount, "cgroup2", 0, ""); err != nil {
		return fmt.Errorf("mount cgroup2 at %s (needs a cgroup v2 hierarchy): %w", mount, err)
	}
	path := filepath.Join(mount, "hp"+l.ID)
	l.mu.Lock()
	l.cg.mount = mount
	l.mu.Unlock()
	if err := os.Mkdir(path, 0o755); err != nil {
		return fmt.Errorf("create cgroup %s: %w", path, err)
	}
	l.mu.Lock()
	l.Cgroup, l.cg.created = path, true
	l.mu.Unlock()
	return nil
}

// EnterCgroup moves this process (every thread) into the lab's cgroup:
// sockets it creates from now on, in any namespace, belong to the cgroup.
// Sockets created before keep the cgroup they had. Close or LeaveCgroup
// moves it back.
func (l *Lab) EnterCgroup() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.Cgroup == "" {
		return errors.New("enter cgroup: lab has none (Options.Cgroup)")
	}
	if l.cg.origin != "" {
		return nil
	}
	rel, err := ownCgroup()
	if err != nil {
		return err
	}
	if err := moveTo(l.Cgroup, os.Getpid()); err != nil {
		return err
	}
	l.cg.origin = filepath.Join(l.cg.mount, rel)
	return nil
}

// LeaveCgroup moves this process back to the cgroup it was in before
// EnterCgroup; without EnterCgroup it does nothing.
func (l *Lab) LeaveCgroup() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leaveLocked()
}

func (l *Lab) leaveLocked() error {
	if l.cg.origin == "" {
		return nil
	}
	if err := moveTo(l.cg.origin, os.Getpid()); err != nil {
		return err
	}
	l.cg.origin = ""
	return nil
}

// InCgroup tells whether pid is in the lab's cgroup.
func (l *Lab) InCgroup(pid int) (bool, error) {
	b, err := os.ReadFile(filepath.Join(l.Cgroup, "cgroup.procs"))
	if err != nil {
		return false, fmt.Errorf("read cgroup procs: %w", err)
	}
	for _, f := range strings.Fields(string(b)) {
		if f == strconv.Itoa(pid) {
			return true, nil
		}
	}
	return false, nil
}

// closeCgroup undoes setupCgroup. A cgroup that still holds a process (one
// the test started elsewhere) is retried for a moment before giving up.
func (l *Lab) closeCgroup() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	if err := l.leaveLocked(); err != nil {
		errs = append(errs, err)
	}
	if l.cg.created {
		var err error
		for i := 0; i < 50; i++ {
			if err = unix.Rmdir(l.Cgroup); err == nil || errors.Is(err, unix.ENOENT) {
				err = nil
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", l.Cgroup, err))
		} else {
			l.cg.created, l.Cgroup = false, ""
		}
	}
	if l.cg.mount != "" && !l.cg.created {
		if err := unix.Unmount(l.cg.mount, unix.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount cgroup2 %s: %w", l.cg.mount, err))
		} else {
			l.cg.mount = ""
		}
	}
	return errs
}

// ownCgroup is this process's cgroup v2 path relative to the hierarchy root.
func ownCgroup() (string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("read own cgroup: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rel, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			return rel, nil
		}
	}
	return "", errors.New("read own cgroup: no cgroup v2 entry in /proc/self/cgroup")
}

func moveTo(cgroup string, pid int) error {
	if err := os.WriteFile(filepath.Join(cgroup, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		return fmt.Errorf("move pid %d to cgroup %s: %w", pid, cgroup, err)
	}
	return nil
}

// ExecInCgroup runs a command in ns to completion with the process born in
// the lab's cgroup, and returns its combined output, like NS.Exec.
func (l *Lab) ExecInCgroup(ns *NS, args ...string) ([]byte, error) {
	if len(args) == 0 {
		return nil, errors.New("exec: no command")
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.Name}, args...)...)
	cg, err := l.bornInCgroup(cmd)
	if err != nil {
		return nil, fmt.Errorf("exec %s: %w", args[0], err)
	}
	defer cg.Close()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s in %s (cgroup): %w: %s", strings.Join(args, " "), ns.Name, err, bytesTrim(out))
	}
	return out, nil
}

// bornInCgroup makes cmd start inside the lab's cgroup (clone3 with
// CLONE_INTO_CGROUP). The caller closes the returned cgroup directory once
// cmd has started.
func (l *Lab) bornInCgroup(cmd *exec.Cmd) (*os.File, error) {
	if l.Cgroup == "" {
		return nil, errors.New("lab has no cgroup (Options.Cgroup)")
	}
	cg, err := os.Open(l.Cgroup)
	if err != nil {
		return nil, fmt.Errorf("open cgroup: %w", err)
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(cg.Fd())
	return cg, nil
}
