package supervisor_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/lab"
)

const (
	chaosTCP     = "10.96.0.70:80"
	chaosUDP     = "10.96.0.70:53"
	chaosStreams = 50
)

// TestPrivilegedChaos runs random failures and changes against a node
// carrying 50 TCP streams and a UDP probe through service VIPs: kill -9 of
// the ct and lb plugins and of the supervisor (also in the middle of an
// upgrade), plugin upgrades, algorithm swaps, service and weight churn, and
// new connections. No stream may break or move to another backend, and no
// probe answer may come from anywhere but the VIP and the probe's backend.
//
// It runs for HOTPATH_CHAOS_DURATION (default 60s; `make chaos` runs it
// longer), half of it with socket LB off and half with it on (its clients
// connect from the lab's cgroup, so socket LB translates them). The actions
// come from a seeded RNG; the seed is logged, and HOTPATH_CHAOS_SEED=<seed>
// replays the same sequence of actions in a mode (-run
// 'TestPrivilegedChaos/socklb=on').
func TestPrivilegedChaos(t *testing.T) {
	dur := 60 * time.Second
	if v := os.Getenv("HOTPATH_CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("HOTPATH_CHAOS_DURATION=%q: want a duration like 10m", v)
		}
		dur = d
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("HOTPATH_CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("HOTPATH_CHAOS_SEED=%q: want a number", v)
		}
		seed = s
	}
	e2e.Modes(t, func(t *testing.T, sockLB bool) { runChaos(t, sockLB, dur/2, seed) })
}

func runChaos(t *testing.T, sockLB bool, dur time.Duration, seed uint64) {
	t.Logf("chaos for %s, seed %d (replay: HOTPATH_CHAOS_SEED=%d)", dur, seed, seed)
	c := newChaos(t, sockLB, seed)
	deadline := time.Now().Add(dur)
	for c.step = 1; time.Now().Before(deadline); c.step++ {
		a := chaosActions[c.rng.IntN(len(chaosActions))]
		c.history = append(c.history, fmt.Sprintf("%d: %s", c.step, a.name))
		a.do(c)
		c.checkTraffic()
		time.Sleep(time.Duration(c.rng.IntN(300)) * time.Millisecond)
	}
	c.final()
}

// chaos is one run: the lab, the traffic, the RNG and what the services
// should look like.
type chaos struct {
	t       *testing.T
	env     *e2e.Env
	rng     *rand.Rand
	seed    uint64
	step    int
	history []string

	builds   map[string][]string // plugin -> two builds to alternate
	upgrades map[string]int
	algs     map[string]string // main VIP (with proto) -> algorithm
	extra    map[string]bool   // churned services that exist
	streams  []*lab.Stream
	on       []string // backend each stream started on
	probe    *probe
}

func newChaos(t *testing.T, sockLB bool, seed uint64) *chaos {
	c := &chaos{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		upgrades: map[string]int{}, extra: map[string]bool{},
		algs: map[string]string{chaosTCP + "/tcp": "maglev", chaosUDP + "/udp": "random"}}
	// The same variant builds as TestPrivilegedUpgradesUnderVIPTraffic,
	// so one test binary builds them once.
	c.builds = map[string][]string{
		"ct": {e2e.Variant(t, "hotpath-ct", ctPkg, "1.1.0-a"), e2e.Variant(t, "hotpath-ct", ctPkg, "1.1.0-b")},
		"lb": {e2e.Variant(t, "hotpath-lb", lbPkg, "1.1.0-a"), e2e.Variant(t, "hotpath-lb", lbPkg, "1.1.0-b")},
	}
	c.env = lbEnvMode(t, sockLB)
	t.Cleanup(c.endLeftovers) // before the lab's cleanup removes the namespace
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chaos seed %d (replay: HOTPATH_CHAOS_SEED=%d); actions:\n%s", seed, seed, strings.Join(c.history, "\n"))
			c.keepLogs()
		}
	})
	tcp := []string{"lb", "service", "add", chaosTCP + "/tcp", "--algorithm", "maglev"}
	udp := []string{"lb", "service", "add", chaosUDP + "/udp", "--algorithm", "random"}
	for _, w := range webs {
		tcp = append(tcp, "--backend", backend(c.env, w, 1))
		udp = append(udp, "--backend", c.env.Lab.Pods[w].IP.String()+":5353")
	}
	mustCLI(t, c.env, tcp...)
	mustCLI(t, c.env, udp...)
	for range chaosStreams {
		s, name := vipStream(t, c.env, chaosTCP)
		c.streams, c.on = append(c.streams, s), append(c.on, name)
	}
	var err error
	if c.probe, err = startProbe(c.env, chaosUDP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.probe.Stop)
	return c
}

const lbPkg = "github.com/hotpath/hotpath/plugins/lb"

// fatalf fails the run, naming the seed and the step.
func (c *chaos) fatalf(format string, args ...any) {
	c.t.Helper()
	c.t.Fatalf("seed %d, step %d: %s", c.seed, c.step, fmt.Sprintf(format, args...))
}

type chaosAction struct {
	name string
	do   func(*chaos)
}

var chaosActions = []chaosAction{
	{"kill -9 ct", func(c *chaos) { c.killPlugin("ct") }},
	{"kill -9 lb", func(c *chaos) { c.killPlugin("lb") }},
	{"kill -9 supervisor", func(c *chaos) { c.killSupervisor() }},
	{"upgrade ct", func(c *chaos) { c.upgrade("ct") }},
	{"upgrade lb", func(c *chaos) { c.upgrade("lb") }},
	{"kill -9 supervisor during an upgrade", func(c *chaos) { c.upgradeAndKill(true) }},
	{"kill -9 a plugin during an upgrade", func(c *chaos) { c.upgradeAndKill(false) }},
	{"swap an algorithm", func(c *chaos) { c.swapAlgorithm() }},
	{"service churn", func(c *chaos) { c.churn() }},
	{"new connections", func(c *chaos) { c.connect() }},
}

// killPlugin kills the running instance of name, if one runs (it may be
// restarting from an earlier kill).
func (c *chaos) killPlugin(name string) {
	p, err := c.env.Node.Plugin(name)
	if err != nil || p.Pid <= 0 {
		c.history = append(c.history, fmt.Sprintf("  %s not running (%v)", name, err))
		return
	}
	// A pid the supervisor lists may be stale (killed a moment ago, not
	// noticed yet): kill it only while it still runs our plugin in our lab.
	if !slices.Contains(c.pluginProcs()[name], p.Pid) {
		c.history = append(c.history, fmt.Sprintf("  %s pid %d gone already", name, p.Pid))
		return
	}
	if err := syscall.Kill(p.Pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
		c.fatalf("kill %s (pid %d): %v", name, p.Pid, err)
	}
}

// killSupervisor kills the supervisor and starts a new one, which must
// adopt what the old one left.
func (c *chaos) killSupervisor() {
	if err := c.env.Sup.Kill(syscall.SIGKILL); err != nil {
		c.fatalf("kill supervisor: %v", err)
	}
	c.env.Sup.Wait(5 * time.Second)
	// Nobody home for a moment: the datapath carries on alone.
	time.Sleep(time.Duration(c.rng.IntN(500)) * time.Millisecond)
	c.restartSupervisor()
}

// restartSupervisor starts a supervisor after a kill; once its plugins are
// healthy, exactly one instance of each may run: what the dead supervisor
// left half done is finished or undone.
func (c *chaos) restartSupervisor() {
	c.t.Helper()
	c.env.StartSupervisor(c.env.PluginFlag("ct"), c.env.PluginFlag("lb"))
	c.healthy()
	c.checkProcesses()
}

// healthy waits until both plugins run and report healthy: control
// commands need them (failures to reach them are tested elsewhere).
func (c *chaos) healthy() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ps, err := c.env.Node.Plugins()
		ok := err == nil && len(ps) == 2
		for _, p := range ps {
			// The supervisor may not have seen a kill -9 of a moment ago
			// yet: a pid that is gone is not a healthy plugin, whatever
			// the last health check said.
			ok = ok && p.Healthy && p.Pid > 0 && syscall.Kill(p.Pid, 0) == nil
		}
		if ok {
			return
		}
		last = fmt.Sprintf("%+v %v", ps, err)
		time.Sleep(100 * time.Millisecond)
	}
	c.fatalf("plugins not healthy after 30s: %s", last)
}

func (c *chaos) nextBuild(name string) string {
	c.upgrades[name]++
	return c.builds[name][c.upgrades[name]%2]
}

func (c *chaos) upgrade(name string) {
	c.healthy()
	res, err := upgrade(c.env, name, c.nextBuild(name), 300*time.Millisecond)
	if err != nil {
		c.fatalf("upgrade %s on a healthy node: %v", name, err)
	}
	c.env.Remember(res.NewPid)
}

// upgradeAndKill starts an upgrade and kills the supervisor or a plugin
// while it runs. The upgrade may fail; the node must recover either way.
func (c *chaos) upgradeAndKill(supervisor bool) {
	c.healthy()
	name := []string{"ct", "lb"}[c.rng.IntN(2)]
	victim := []string{"ct", "lb"}[c.rng.IntN(2)]
	delay := time.Duration(c.rng.IntN(600)) * time.Millisecond
	done := make(chan error, 1)
	go func() {
		res, err := upgrade(c.env, name, c.nextBuild(name), 300*time.Millisecond)
		if err == nil {
			c.env.Remember(res.NewPid)
		}
		done <- err
	}()
	time.Sleep(delay)
	if supervisor {
		c.history = append(c.history, fmt.Sprintf("  upgrade %s, supervisor killed after %s", name, delay))
		c.env.Sup.Kill(syscall.SIGKILL)
		c.env.Sup.Wait(5 * time.Second)
	} else {
		c.history = append(c.history, fmt.Sprintf("  upgrade %s, %s killed after %s", name, victim, delay))
		c.killPlugin(victim)
	}
	select {
	case err := <-done:
		c.history = append(c.history, fmt.Sprintf("  upgrade returned %v", err))
	case <-time.After(time.Minute):
		c.fatalf("upgrade of %s did not return in a minute", name)
	}
	if supervisor {
		c.restartSupervisor()
	}
}

func (c *chaos) swapAlgorithm() {
	c.healthy()
	vip := []string{chaosTCP + "/tcp", chaosUDP + "/udp"}[c.rng.IntN(2)]
	alg := map[string]string{"maglev": "random", "random": "maglev"}[c.algs[vip]]
	if _, err := c.env.CLI("lb", "service", "set-algorithm", vip, alg); err != nil {
		c.fatalf("set-algorithm %s %s: %v", vip, alg, err)
	}
	c.algs[vip] = alg
}

// churn adds or deletes an extra service, or changes a backend's weight on
// the main TCP service (which rebuilds its Maglev table under the streams).
func (c *chaos) churn() {
	c.healthy()
	var args []string
	switch r := c.rng.IntN(3); {
	case r == 0 && len(c.extra) > 0:
		keys := slices.Sorted(maps.Keys(c.extra))
		vip := keys[c.rng.IntN(len(keys))]
		args = []string{"lb", "service", "del", vip}
		delete(c.extra, vip)
	case r == 1:
		w := webs[c.rng.IntN(len(webs))]
		args = []string{"lb", "backend", "add", chaosTCP + "/tcp", backend(c.env, w, 1+c.rng.IntN(5))}
	default:
		vip := fmt.Sprintf("10.96.1.%d:80/tcp", 1+c.rng.IntN(200))
		if c.extra[vip] {
			return
		}
		args = []string{"lb", "service", "add", vip, "--algorithm", []string{"maglev", "random"}[c.rng.IntN(2)]}
		for _, w := range webs[:1+c.rng.IntN(len(webs))] {
			args = append(args, "--backend", backend(c.env, w, 1))
		}
		c.extra[vip] = true
	}
	c.history = append(c.history, "  "+strings.Join(args, " "))
	if _, err := c.env.CLI(args...); err != nil {
		c.fatalf("%s: %v", strings.Join(args, " "), err)
	}
}

// connect opens a few new connections through the main VIP, whatever state
// the control plane is in: each must reach a backend and be greeted.
func (c *chaos) connect() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 5 {
		name, err := ask(ctx, c.env, chaosTCP, 0)
		if err != nil || !slices.Contains(webs, name) {
			c.fatalf("new connection through %s: greeted %q, %v", chaosTCP, name, err)
		}
	}
}

// checkTraffic fails the run as soon as a stream broke or the probe saw a
// wrong delivery.
func (c *chaos) checkTraffic() {
	c.t.Helper()
	for i, s := range c.streams {
		if st := s.Stats(); st.Err != nil {
			c.fatalf("stream %d (%s, on %s) broke: %v", i, s.LocalAddr(), c.on[i], st.Err)
		}
	}
	if _, _, wrong := c.probe.counts(); len(wrong) > 0 {
		c.fatalf("UDP probe: %d wrong deliveries, first: %s", len(wrong), wrong[0])
	}
}

// final lets the node settle and checks what the run left: every stream
// alive on its first backend, every probe answered, no datapath failure,
// the services as the run left them and one process per plugin.
func (c *chaos) final() {
	c.step = -1
	c.healthy()
	time.Sleep(time.Second)
	c.checkTraffic()
	c.checkBackends()
	for i, s := range c.streams {
		if st := s.Stop(); st.Err != nil || st.Rounds < 20 {
			c.fatalf("stream %d on %s: %+v", i, c.on[i], st)
		}
	}
	c.probe.Stop()
	sent, lost, wrong := c.probe.counts()
	if lost > 0 || len(wrong) > 0 || sent < 100 {
		c.fatalf("UDP probe: %d sent, %d lost, wrong %v", sent, lost, wrong)
	}
	for _, r := range []abi.Reason{abi.AbiHpReasonHP_R_MISSED_TAIL_CALL, abi.AbiHpReasonHP_R_NO_CONTEXT,
		abi.AbiHpReasonHP_R_PARSE_ERROR, abi.AbiHpReasonHP_R_GEN_MISMATCH, abi.AbiHpReasonHP_R_NO_BACKEND} {
		if n := counter(c.t, c.env, r); n != 0 {
			c.fatalf("%d packets counted as %s", n, abi.ReasonName(r))
		}
	}
	c.checkServices()
	c.checkProcesses()
	done := map[string]int{}
	for _, h := range c.history {
		if _, a, ok := strings.Cut(h, ": "); ok && !strings.HasPrefix(h, " ") {
			done[a]++
		}
	}
	c.t.Logf("actions %v; %d streams intact; UDP probe %d answered by %s", done, len(c.streams), sent, c.probe.backend)
}

// checkBackends: each stream's connection is still tracked towards the
// backend that greeted it.
func (c *chaos) checkBackends() {
	recs := c.env.CT()
	for i, s := range c.streams {
		want := c.env.Lab.Pods[c.on[i]].IP.String() + ":8080"
		// Translated at the socket, a connection is client -> backend from
		// its first packet: its entry carries no rev_nat.
		if r := find(recs, "TCP", "OUT", s.LocalAddr(), want); r == nil || (r.RevNat == 0 && !c.env.SockLB) {
			c.fatalf("stream %d (%s): no CT entry towards its backend %s %s", i, s.LocalAddr(), c.on[i], want)
		}
	}
}

func (c *chaos) checkServices() {
	got := map[string]string{}
	for _, s := range listServices(c.t, c.env) {
		got[s.VIP] = s.Algorithm
	}
	for vip, alg := range c.algs {
		if got[vip] != alg {
			c.fatalf("service %s: algorithm %q, want %q (services %v)", vip, got[vip], alg, got)
		}
	}
	if len(got) != len(c.algs)+len(c.extra) {
		c.fatalf("services %v, want the two main ones and %v", got, c.extra)
	}
	for vip := range c.extra {
		if _, ok := got[vip]; !ok {
			c.fatalf("churned service %s lost (services %v)", vip, got)
		}
	}
}

// checkProcesses: exactly one process runs each plugin. A leaked or
// doubled instance would be a second GC owner. Instances on their way out
// get a few seconds.
func (c *chaos) checkProcesses() {
	c.t.Helper()
	var procs map[string][]int
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		procs = c.pluginProcs()
		if len(procs["ct"]) == 1 && len(procs["lb"]) == 1 || time.Now().After(deadline) {
			break
		}
	}
	for _, name := range []string{"ct", "lb"} {
		if len(procs[name]) != 1 {
			p, err := c.env.Node.Plugin(name)
			c.fatalf("%d processes run the %s plugin in the node namespace (pids %v), want 1; the supervisor knows pid %d (%v)",
				len(procs[name]), name, procs[name], p.Pid, err)
		}
	}
}

// pluginProcs finds the live processes in the lab's node namespace that run
// one of our plugin builds, by plugin name.
func (c *chaos) pluginProcs() map[string][]int {
	dirs := []string{c.env.Bin, filepath.Dir(c.builds["ct"][0])}
	node, err := nsInode(c.env.Lab.Node.Path())
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string][]int{}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		exe, err := os.Readlink(p + "/exe")
		if err != nil {
			continue
		}
		exe = strings.TrimSuffix(exe, " (deleted)")
		pid, _ := strconv.Atoi(filepath.Base(p))
		if ns, err := nsInode(p + "/ns/net"); err != nil || ns != node || !slices.Contains(dirs, filepath.Dir(exe)) || zombie(pid) {
			continue
		}
		for _, name := range []string{"ct", "lb"} {
			if strings.HasPrefix(filepath.Base(exe), "hotpath-"+name) {
				out[name] = append(out[name], pid)
			}
		}
	}
	return out
}

func nsInode(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("stat namespace %s: %w", path, err)
	}
	return st.Ino, nil
}

// keepLogs copies the supervisor logs of a failed run out of the lab, which
// is about to be removed, whole: the failure is often far from their tails.
func (c *chaos) keepLogs() {
	dir, err := os.MkdirTemp("", fmt.Sprintf("hotpath-chaos-%d-", c.seed))
	if err != nil {
		c.t.Logf("keep logs: %v", err)
		return
	}
	logs, _ := filepath.Glob(filepath.Join(c.env.Lab.Dir, "*.log"))
	for _, l := range logs {
		if b, err := os.ReadFile(l); err == nil {
			os.WriteFile(filepath.Join(dir, filepath.Base(l)), b, 0o600)
		}
	}
	c.t.Logf("supervisor logs of this run kept in %s", dir)
}

// endLeftovers ends, by pid, plugin processes of ours that a failed run
// left in the node namespace and the supervisor no longer knows of, so
// they do not outlive the lab.
func (c *chaos) endLeftovers() {
	c.env.Stop()
	for name, pids := range c.pluginProcs() {
		for _, pid := range pids {
			c.t.Logf("ending leftover %s plugin process %d", name, pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
