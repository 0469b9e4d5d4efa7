package bench

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Env describes the machine a report was measured on.
type Env struct {
	Date      string
	Kernel    string
	CPU       string
	CPUs      int
	MemMiB    uint64
	Go        string
	Commit    string
	LoadStart string
}

// ReadEnv collects the header facts. Nothing here fails the bench.
func ReadEnv() Env {
	e := Env{Date: time.Now().Format("2006-01-02 15:04 MST"), CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadStart: loadAvg()}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		e.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	e.CPU = cpuModel()
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		e.MemMiB = uint64(si.Totalram) * uint64(si.Unit) >> 20
	}
	e.Commit = commit()
	return e
}

// toolVersions is read when the report is written: the lab suite may have
// installed the tools meanwhile.
func toolVersions() []string {
	var out []string
	for _, t := range [][]string{{"iptables", "-V"}, {"nft", "-v"}, {"iperf3", "-v"}} {
		if b, err := exec.Command(t[0], t[1:]...).Output(); err == nil {
			line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
			out = append(out, line)
		}
	}
	return out
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// commit is the VCS revision stamped into the binary, else HEAD read with a
// git command that changes nothing.
func commit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = " (with uncommitted changes)"
				}
			}
		}
		if len(rev) >= 12 {
			return rev[:12] + dirty
		}
	}
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return fmt.Sprintf("%s %s %s", f[0], f[1], f[2])
}
