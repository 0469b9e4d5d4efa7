// Package demo is `make demo` (demo/cmd/demo): a lab of namespaces, a supervisor with its
// plugins, live traffic, a plugin killed under load, a live map resize, a schema migration, and a summary.
package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/internal/node"
	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/supervisor"
)

// Options configure a demo run.
type Options struct {
	Bin string    // directory with hotpath and the plugin binaries
	Out io.Writer // where the story is told
}

// Demo is one run.
type Demo struct {
	opts  Options
	lab   *lab.Lab
	node  *node.Node
	steps int
	facts []string // summary lines
}

// Run sets the lab up, tells the story and tears everything down again.
func Run(ctx context.Context, opts Options) error {
	d := &Demo{opts: opts}
	for _, b := range []string{"hotpath", "hotpath-ct", "hotpath-lb", "hotpath-nat", "hotpath-policy", "hotpath-tunnel"} {
		if _, err := os.Stat(filepath.Join(opts.Bin, b)); err != nil {
			return fmt.Errorf("demo needs %s in %s (run make build): %w", b, opts.Bin, err)
		}
	}
	var err error
	d.step("Lab: a node namespace with a client pod and three web pods on veth pairs, an external network behind an uplink")
	d.lab, err = lab.New(lab.Options{Pods: []string{"client", "web1", "web2", "web3"}, MountBPFFS: true, External: true, Cgroup: true})
	if err != nil {
		return err
	}
	defer d.cleanup()
	d.node = node.New(d.lab, opts.Bin)
	for _, name := range []string{"client", "web1", "web2", "web3"} {
		p := d.lab.Pods[name]
		d.say("  %-7s %s (node side %s)", name, p.IP, p.HostIf)
	}
	d.say("  %-7s %s (node side %s %s, no route to the pods)", "ext", lab.ExternalIP, lab.UplinkDevice, lab.UplinkIP)
	d.say("  %-7s %s (socket LB applies to processes started here)", "cgroup", d.lab.Cgroup)
	if err := d.startSupervisor(); err != nil {
		return err
	}
	if err := d.conntrack(ctx); err != nil {
		return err
	}
	if err := d.loadBalancer(ctx); err != nil {
		return err
	}
	if err := d.onePass(ctx); err != nil {
		return err
	}
	if err := d.socketLB(ctx); err != nil {
		return err
	}
	if err := d.masquerade(ctx); err != nil {
		return err
	}
	if err := d.upgrade(ctx); err != nil {
		return err
	}
	if err := d.resize(ctx); err != nil {
		return err
	}
	if err := d.schema(ctx); err != nil {
		return err
	}
	if err := d.policy(ctx); err != nil {
		return err
	}
	if err := d.tunnel(ctx); err != nil {
		return err
	}
	d.summary()
	return nil
}

func (d *Demo) cleanup() {
	d.step("Cleanup: stop the supervisor, its plugins, remove namespaces and pins")
	d.node.Stop()
	if err := d.lab.Close(); err != nil {
		d.say("  cleanup: %v", err)
		return
	}
	d.say("  done")
}

func (d *Demo) step(format string, args ...any) {
	d.steps++
	fmt.Fprintf(d.opts.Out, "\n\033[1m== %d. %s\033[0m\n", d.steps, fmt.Sprintf(format, args...))
}

func (d *Demo) say(format string, args ...any) {
	fmt.Fprintf(d.opts.Out, format+"\n", args...)
}

func (d *Demo) fact(format string, args ...any) {
	d.facts = append(d.facts, fmt.Sprintf(format, args...))
}

// cli runs a hotpath command and shows it the way a user would type it.
func (d *Demo) cli(show bool, args ...string) (string, error) {
	out, err := d.node.CLI(args...)
	if show {
		d.say("$ hotpath %s", strings.Join(args, " "))
		shown := string(out)
		if err != nil {
			shown += err.Error()
		}
		d.say("%s", strings.TrimRight(indent(shown), "\n"))
	}
	return string(out), err
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n") + "\n"
}

func (d *Demo) startSupervisor() error {
	d.step("Supervisor: pinned maps, pipeline prog array, TCX links on every pod device and the uplink, ct, lb, nat and policy plugins")
	cfg, err := d.natConfig()
	if err != nil {
		return err
	}
	args := []string{"--metrics-addr", metricsAddr, "--config", cfg, "--cgroup", d.lab.Cgroup}
	for _, dev := range append(d.node.Devices(), lab.UplinkDevice) {
		args = append(args, "--device", dev)
	}
	args = append(args, "--plugin", "ct="+filepath.Join(d.opts.Bin, "hotpath-ct"), "--plugin", "lb="+filepath.Join(d.opts.Bin, "hotpath-lb"),
		"--plugin", "policy="+filepath.Join(d.opts.Bin, "hotpath-policy"))
	d.say("  (%s: the nat plugin's masquerade block and the lb plugin's {\"socket_lb\": true})", filepath.Base(cfg))
	d.say("$ hotpath --bpffs %s --state-dir %s supervisor run %s   (in the node namespace)", d.lab.BPFFS, d.node.StateDir, strings.Join(args, " "))
	if err := d.node.Start(args...); err != nil {
		return err
	}
	_, err = d.cli(true, "status")
	return err
}

// plugin is plugin name's entry of `plugin list` (zero when unavailable).
func (d *Demo) plugin(name string) supervisor.PluginStatus {
	p, _ := d.node.Plugin(name)
	return p
}

func (d *Demo) ctEntry(src, dst string) *ctmap.Record {
	var recs []ctmap.Record
	if err := d.node.JSON(&recs, "ct", "list"); err != nil {
		return nil
	}
	for i := range recs {
		if recs[i].Direction == "OUT" && recs[i].Src == src && recs[i].Dst == dst {
			return &recs[i]
		}
	}
	return nil
}

func (d *Demo) summary() {
	d.step("Summary")
	for _, f := range d.facts {
		d.say("  - %s", f)
	}
}
