package supervisor_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/supervisor"
)

// counter reads a datapath counter straight from the pinned metrics map.
func counter(t *testing.T, env *e2e.Env, r abi.Reason) uint64 {
	t.Helper()
	c := counters(t, env)
	return c[r][0].Packets + c[r][1].Packets
}

// counterDir is counter at one hook (0 ingress, 1 egress).
func counterDir(t *testing.T, env *e2e.Env, r abi.Reason, dir int) uint64 {
	t.Helper()
	return counters(t, env)[r][dir].Packets
}

// counters reads every datapath counter.
func counters(t *testing.T, env *e2e.Env) map[abi.Reason][2]abi.Metric {
	t.Helper()
	c, err := supervisor.DatapathCounters(pinnedMap(t, pin.Layout{Root: env.Lab.BPFFS}.Map(abi.MapMetrics)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pinnedMap opens the map pinned at path for the rest of the test.
func pinnedMap(t *testing.T, path string) *ebpf.Map {
	t.Helper()
	m, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] == "Z"
}
