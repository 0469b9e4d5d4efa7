package host

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/hashicorp/go-hclog"
)

// OwnerEnv marks every plugin process a supervisor starts with the state
// dir of that supervisor (Spec.Owner). A supervisor can die at any point
// between starting a plugin and recording it in its state file (a restart
// that is loading programs, an upgrade still starting its new instance);
// the next supervisor then has no pid to re-adopt or end, and a second
// instance of the plugin would run beside the unrecorded one. Recording the
// pid before the process runs cannot close that window (go-plugin forks and
// execs in one call), so instead the process carries the mark, which it
// inherits at exec and cannot lose, and EndOrphans finds it in /proc.
const OwnerEnv = "HOTPATH_PLUGIN_OWNER"

// EndOrphans SIGKILLs every process marked with owner (see OwnerEnv) whose
// pid is not in keep, and waits for each to exit. Whatever a kept plugin
// forked stays too: a plugin we start leads its own process group, which its
// children inherit. Only the supervisor
// holding owner's lock may call it: every marked process it did not adopt
// or start is then one a dead supervisor lost. A process is matched through
// a pidfd opened before its environment is read and checked alive after,
// so a pid that is reused meanwhile is never signalled. It returns the pids
// it ended.
func EndOrphans(owner string, keep map[int]bool, log hclog.Logger) []int {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	mark := []byte(OwnerEnv + "=" + filepath.Clean(owner))
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var ended []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || keep[pid] || pid == os.Getpid() {
			continue
		}
		ok, err := endMarked(pid, mark, keep, log)
		if err != nil {
			log.Error("end orphaned plugin process", "pid", pid, "error", err)
		}
		if ok {
			ended = append(ended, pid)
		}
	}
	return ended
}

// endMarked kills pid if its environment holds mark and reports whether it
// did; any other process, or one that is gone, it leaves alone.
func endMarked(pid int, mark []byte, keep map[int]bool, log hclog.Logger) (bool, error) {
	p, err := openProc(pid)
	if err != nil {
		return false, nil // gone meanwhile
	}
	defer p.release()
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil || !hasVar(env, mark) || keep[group(pid)] || p.gone() {
		return false, nil
	}
	exe, _ := Exe(pid)
	log.Warn("ending a plugin process no supervisor recorded", "pid", pid, "exe", exe)
	if err := p.signal(syscall.SIGKILL); err != nil {
		return false, fmt.Errorf("kill pid %d: %w", pid, err)
	}
	if !waitFor(p.done, killTimeout) {
		return false, fmt.Errorf("pid %d survives SIGKILL", pid)
	}
	return true, nil
}

// group is the process group of pid, from /proc/<pid>/stat (0 if unknown).
func group(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name in parentheses may hold spaces: count fields after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+1:]) // state, ppid, pgrp, ...
	if len(f) < 3 {
		return 0
	}
	g, _ := strconv.Atoi(string(f[2]))
	return g
}

// hasVar reports whether the NUL-separated environment env holds the
// entry kv exactly.
func hasVar(env, kv []byte) bool {
	for _, e := range bytes.Split(env, []byte{0}) {
		if bytes.Equal(e, kv) {
			return true
		}
	}
	return false
}

// gone polls the pidfd now, unlike exited, which waits for the watcher
// goroutine to notice: after it reports false, what /proc/<pid> showed
// before belonged to the process the pidfd names.
func (p *proc) gone() bool {
	rc, err := p.f.SyscallConn()
	if err != nil {
		return true
	}
	gone := true
	if err := rc.Control(func(fd uintptr) { gone = readable(int(fd)) }); err != nil {
		return true
	}
	return gone
}
