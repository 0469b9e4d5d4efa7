package host

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestEndOrphansOnlyMarked: only processes whose environment carries the
// owner's exact mark end, and not those kept; processes of another owner,
// of a longer path with the same prefix, in a kept process's group, or
// unmarked are left alone.
func TestEndOrphansOnlyMarked(t *testing.T) {
	owner := t.TempDir()
	exited := map[int]chan struct{}{}
	run := func(pgid int, env ...string) *exec.Cmd {
		t.Helper()
		cmd := exec.Command("sleep", "60")
		cmd.Env = append(os.Environ(), env...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: pgid}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		exited[cmd.Process.Pid] = done
		go func() { cmd.Wait(); close(done) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-done })
		return cmd
	}
	orphan := run(0, OwnerEnv+"="+owner)
	kept := run(0, OwnerEnv+"="+owner)
	forked := run(kept.Process.Pid, OwnerEnv+"="+owner) // in the kept plugin's group
	other := run(0, OwnerEnv+"="+filepath.Join(owner, "other"))
	prefix := run(0, OwnerEnv+"="+owner+"x")
	plain := run(0)

	ended := EndOrphans(owner+"/", map[int]bool{kept.Process.Pid: true}, nil)
	if !slices.Equal(ended, []int{orphan.Process.Pid}) {
		t.Errorf("ended %v, want only %d", ended, orphan.Process.Pid)
	}
	if !waitFor(exited[orphan.Process.Pid], time.Second) {
		t.Errorf("orphan %d still runs", orphan.Process.Pid)
	}
	for name, c := range map[string]*exec.Cmd{"kept": kept, "kept's group": forked, "other owner": other, "prefix": prefix, "unmarked": plain} {
		select {
		case <-exited[c.Process.Pid]:
			t.Errorf("%s process %d ended", name, c.Process.Pid)
		default:
		}
	}
}
