package host

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestEndOrphansOnlyMarked: only processes whose environment carries the
// owner's exact mark end, and not those kept; processes of another owner,
// of a longer path with the same prefix, or unmarked are left alone.
func TestEndOrphansOnlyMarked(t *testing.T) {
	owner := t.TempDir()
	exited := map[int]chan struct{}{}
	run := func(env ...string) *exec.Cmd {
		t.Helper()
		cmd := exec.Command("sleep", "60")
		cmd.Env = append(os.Environ(), env...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		exited[cmd.Process.Pid] = done
		go func() { cmd.Wait(); close(done) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-done })
		return cmd
	}
	orphan := run(OwnerEnv + "=" + owner)
	kept := run(OwnerEnv + "=" + owner)
	other := run(OwnerEnv + "=" + filepath.Join(owner, "other"))
	prefix := run(OwnerEnv + "=" + owner + "x")
	plain := run()

	ended := EndOrphans(owner+"/", map[int]bool{kept.Process.Pid: true}, nil)
	if !slices.Equal(ended, []int{orphan.Process.Pid}) {
		t.Errorf("ended %v, want only %d", ended, orphan.Process.Pid)
	}
	if !waitFor(exited[orphan.Process.Pid], time.Second) {
		t.Errorf("orphan %d still runs", orphan.Process.Pid)
	}
	for name, c := range map[string]*exec.Cmd{"kept": kept, "other owner": other, "prefix": prefix, "unmarked": plain} {
		select {
		case <-exited[c.Process.Pid]:
			t.Errorf("%s process %d ended", name, c.Process.Pid)
		default:
		}
	}
}
