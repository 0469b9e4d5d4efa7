// Package demo is `hotpath demo`: a lab of namespaces, a supervisor with its
// plugins, live traffic, a plugin killed under load, and a summary.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/plugins/ct"
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
	state string
	sup   *lab.Proc
	steps int
	facts []string // summary lines
}

// Run sets the lab up, tells the story and tears everything down again.
func Run(ctx context.Context, opts Options) error {
	d := &Demo{opts: opts}
	for _, b := range []string{"hotpath", "hotpath-ct", "hotpath-lb"} {
		if _, err := os.Stat(filepath.Join(opts.Bin, b)); err != nil {
			return fmt.Errorf("demo needs %s in %s (run make build): %w", b, opts.Bin, err)
		}
	}
	var err error
	d.step("Lab: a node namespace with a client pod and three web pods on veth pairs")
	d.lab, err = lab.New(lab.Options{Pods: []string{"client", "web1", "web2", "web3"}, MountBPFFS: true})
	if err != nil {
		return err
	}
	defer d.cleanup()
	d.state = filepath.Join(d.lab.Dir, "state")
	for _, name := range []string{"client", "web1", "web2", "web3"} {
		p := d.lab.Pods[name]
		d.say("  %-7s %s (node side %s)", name, p.IP, p.HostIf)
	}
	if err := d.startSupervisor(); err != nil {
		return err
	}
	if err := d.conntrack(ctx); err != nil {
		return err
	}
	if err := d.loadBalancer(ctx); err != nil {
		return err
	}
	if err := d.upgrade(ctx); err != nil {
		return err
	}
	d.summary()
	return nil
}

func (d *Demo) cleanup() {
	d.step("Cleanup: stop the supervisor, its plugins, remove namespaces and pins")
	if d.sup != nil {
		pids := d.pluginPids()
		d.sup.Stop(5 * time.Second)
		for _, pid := range pids {
			endIfOurs(pid, d.opts.Bin)
		}
	}
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
	full := append([]string{"--bpffs", d.lab.BPFFS, "--state-dir", d.state}, args...)
	out, err := exec.Command(filepath.Join(d.opts.Bin, "hotpath"), full...).CombinedOutput()
	if show {
		d.say("$ hotpath %s", strings.Join(args, " "))
		d.say("%s", strings.TrimRight(indent(string(out)), "\n"))
	}
	if err != nil {
		return string(out), fmt.Errorf("hotpath %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n") + "\n"
}

func (d *Demo) startSupervisor() error {
	d.step("Supervisor: pinned maps, pipeline prog array, TCX links on every pod device, ct and lb plugins")
	args := []string{"--bpffs", d.lab.BPFFS, "--state-dir", d.state, "supervisor", "run", "--metrics-addr", "127.0.0.1:9400"}
	for _, n := range []string{"client", "web1", "web2", "web3"} {
		args = append(args, "--device", d.lab.Pods[n].HostIf)
	}
	args = append(args, "--plugin", "ct="+filepath.Join(d.opts.Bin, "hotpath-ct"), "--plugin", "lb="+filepath.Join(d.opts.Bin, "hotpath-lb"))
	d.say("$ hotpath %s   (in the node namespace)", strings.Join(args, " "))
	p, err := d.lab.Start(d.lab.Node, "", filepath.Join(d.opts.Bin, "hotpath"), args...)
	if err != nil {
		return err
	}
	d.sup = p
	deadline := time.Now().Add(30 * time.Second)
	for {
		if p.Exited() {
			b, _ := os.ReadFile(p.Log)
			return fmt.Errorf("supervisor exited: %s", b)
		}
		if _, err := d.cli(false, "status"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("supervisor not ready after 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, err = d.cli(true, "status")
	return err
}

func (d *Demo) plugins() []supervisor.PluginStatus {
	out, err := d.cli(false, "plugin", "list", "-o", "json")
	if err != nil {
		return nil
	}
	var ps []supervisor.PluginStatus
	json.Unmarshal([]byte(out), &ps)
	return ps
}

func (d *Demo) plugin(name string) supervisor.PluginStatus {
	for _, p := range d.plugins() {
		if p.Name == name {
			return p
		}
	}
	return supervisor.PluginStatus{}
}

func (d *Demo) pluginPids() []int {
	var pids []int
	for _, p := range d.plugins() {
		pids = append(pids, p.Pid)
	}
	if st, err := supervisor.LoadState(d.state); err == nil {
		for _, p := range st.Plugins {
			if p.Reattach != nil {
				pids = append(pids, p.Reattach.Pid)
			}
		}
	}
	return pids
}

// endIfOurs kills pid only if it runs one of the demo's plugin binaries.
func endIfOurs(pid int, bin string) {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err == nil && strings.HasPrefix(exe, filepath.Join(bin, "hotpath-")) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

func (d *Demo) ctEntry(src, dst string) *ct.Record {
	out, err := d.cli(false, "ct", "list", "-o", "json")
	if err != nil {
		return nil
	}
	var recs []ct.Record
	json.Unmarshal([]byte(out), &recs)
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
