package lab

import (
	"os"
	"testing"
	"time"
)

// TestPrivilegedLabCgroup: the lab's cgroup holds this process after
// EnterCgroup and a process started with StartInCgroup from its birth; Close
// moves this process back, removes the cgroup and unmounts the hierarchy.
func TestPrivilegedLabCgroup(t *testing.T) {
	Privileged(t)
	before, err := ownCgroup()
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(Options{Pods: []string{"a"}, Cgroup: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cg, dir := l.Cgroup, l.Dir
	if err := l.EnterCgroup(); err != nil {
		t.Fatal(err)
	}
	if in, err := l.InCgroup(os.Getpid()); err != nil || !in {
		t.Fatalf("after EnterCgroup: in cgroup %v (%v)", in, err)
	}
	p, err := l.StartInCgroup(l.Pods["a"].NS, "", "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	if in, err := l.InCgroup(p.Pid); err != nil || !in {
		t.Fatalf("process started in the cgroup: in %v (%v)", in, err)
	}
	if err := l.LeaveCgroup(); err != nil {
		t.Fatal(err)
	}
	if in, _ := l.InCgroup(os.Getpid()); in {
		t.Fatal("still in the cgroup after LeaveCgroup")
	}
	if err := l.EnterCgroup(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if after, _ := ownCgroup(); after != before {
		t.Errorf("cgroup after Close %q, was %q", after, before)
	}
	for _, path := range []string{cg, dir} {
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("%s left behind (%v)", path, err)
		}
	}
	t.Logf("close took %v", time.Since(start))
	if _, err := (&Lab{}).StartInCgroup(l.Pods["a"].NS, "", "true"); err == nil {
		t.Error("StartInCgroup without a cgroup: no error")
	}
}
