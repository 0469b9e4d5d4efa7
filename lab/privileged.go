package lab

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// Privileged guards TestPrivileged* tests. It skips t when this machine
// cannot build labs (not root, no iproute2, no network namespaces, no bpffs)
// and fails it instead when CI=true, so CI never silently skips them.
func Privileged(t testing.TB) {
	t.Helper()
	reason := missingPrivilege()
	if reason == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("privileged test cannot run (CI=true, so not skipping): %s", reason)
	}
	t.Skipf("privileged test skipped: %s", reason)
}

func missingPrivilege() string {
	if os.Geteuid() != 0 {
		return "not root"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "iproute2 ip not in PATH"
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return "network namespaces not available: " + err.Error()
	}
	if fi, err := os.Stat("/sys/fs/bpf"); err != nil || !fi.IsDir() {
		return "/sys/fs/bpf not available"
	}
	fs, err := os.ReadFile("/proc/filesystems")
	if err != nil || !bytes.Contains(fs, []byte("\tbpf\n")) {
		return "kernel has no bpf filesystem"
	}
	return ""
}
