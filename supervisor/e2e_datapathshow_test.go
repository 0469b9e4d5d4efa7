package supervisor_test

import (
	"strings"
	"testing"

	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/supervisor"
)

// datapathShow is `hotpath datapath show -o json`, with the pinned
// forward stage counters read just before and just after it.
func datapathShow(t *testing.T, env *e2e.Env) (st supervisor.DatapathStatus, pinBefore, pinAfter map[string]uint64) {
	t.Helper()
	pinBefore = fwdStats(t, env)
	env.JSON(&st, "datapath", "show")
	return st, pinBefore, fwdStats(t, env)
}

// consistent checks that every counter shown lies between the pinned
// map's values read around the command, and that none is missing.
func consistent(t *testing.T, st supervisor.DatapathStatus, lo, hi map[string]uint64) {
	t.Helper()
	for name, v := range hi {
		got, ok := st.Forward[name]
		if !ok || got < lo[name] || got > v {
			t.Errorf("datapath show %s = %d (present %v), pinned fwd_stats read %d before and %d after", name, got, ok, lo[name], v)
		}
	}
}

// TestPrivilegedDatapathShow: `hotpath datapath show` reports direct
// redirects on, the forward stage's counters as the kernel holds them
// (pod -> pod and pod -> VIP -> pod counted as redirected into the pod),
// and the next hops the forward stage remembered for that traffic.
func TestPrivilegedDatapathShow(t *testing.T) {
	e2e.Modes(t, showDatapath)
}

func showDatapath(t *testing.T, sockLB bool) {
	env := fwdEnv(t, sockLB, true)
	client, web := env.Lab.Pods["client"], env.Lab.Pods["web"]
	direct := web.IP.String() + ":8080"
	echoes(t, client.NS, 1, direct, "10.96.0.20:80") // neighbours resolved
	before, _, _ := datapathShow(t, env)
	echoes(t, client.NS, 3, direct, "10.96.0.20:80")
	after, lo, hi := datapathShow(t, env)
	t.Logf("datapath show: %+v", after)

	if !after.DirectRedirect || !after.Configured {
		t.Errorf("direct redirects %v (configured %v), want on", after.DirectRedirect, after.Configured)
	}
	consistent(t, after, lo, hi)
	// 6 connections of 64 KiB each way: well over 16 packets per
	// connection and direction went straight into a pod.
	if grown := after.Forward["peer"] - before.Forward["peer"]; grown < 100 {
		t.Errorf("peer grew by %d over 6 echoes of 64 KiB, want at least 100", grown)
	}
	if after.HopsOff || after.NextHops < 1 || after.Usable > after.NextHops {
		t.Errorf("next hops %d (usable %d, off %v), want at least one remembered, remembering on", after.NextHops, after.Usable, after.HopsOff)
	}
	if out := mustCLI(t, env, "datapath", "show"); !strings.Contains(out, "direct redirects: on") || !strings.Contains(out, "peer") {
		t.Errorf("datapath show says:\n%s\nwant direct redirects on and the peer counter", out)
	}
	if _, err := env.CLI("datapath", "show", "extra"); err == nil || !strings.Contains(err.Error(), "takes no arguments") {
		t.Errorf("datapath show extra: %v, want refused", err)
	}
}
