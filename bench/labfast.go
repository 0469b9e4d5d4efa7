package bench

import (
	"encoding/json"
	"fmt"

	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/supervisor"
)

// hotpathOptions are the hotpath features a lab variant changes from the
// defaults (socket LB off, direct redirects on).
type hotpathOptions struct {
	socketLB   bool // lb plugin: translate at connect() for the lab's client
	noRedirect bool // supervisor: leave forwarding to the kernel
}

func (o hotpathOptions) text() string {
	switch {
	case o.socketLB && o.noRedirect:
		return "socket LB on, direct redirects off"
	case o.socketLB:
		return "socket LB on"
	case o.noRedirect:
		return "socket LB off, direct redirects off"
	}
	return "socket LB off"
}

// key names the options in variant keys.
func (o hotpathOptions) key() string {
	switch {
	case o.socketLB && o.noRedirect:
		return "socklb-noredirect"
	case o.socketLB:
		return "socklb"
	case o.noRedirect:
		return "noredirect"
	}
	return "default"
}

// labOptions are the lab options a variant with o needs: socket LB needs
// the lab's own cgroup, where the client's commands run.
func labOptions(o hotpathOptions) lab.Options {
	return lab.Options{Pods: []string{"client", "b1", "b2", "b3"}, NoOffload: true, MountBPFFS: true, Cgroup: o.socketLB}
}

// applyOptions adjusts the supervisor's config and the lb plugin's for e's
// options.
func (e *labEnv) applyOptions(cfg *supervisor.Config) error {
	if e.opts.noRedirect {
		off := false
		cfg.DirectRedirect = &off
	}
	if !e.opts.socketLB {
		return nil
	}
	cfg.Cgroup = e.lab.Cgroup
	for i := range cfg.Plugins {
		if cfg.Plugins[i].Name != "lb" {
			continue
		}
		c := map[string]any{}
		if len(cfg.Plugins[i].Config) > 0 {
			if err := json.Unmarshal(cfg.Plugins[i].Config, &c); err != nil {
				return fmt.Errorf("lb config: %w", err)
			}
		}
		c["socket_lb"] = true
		b, err := json.Marshal(c)
		if err != nil {
			return err
		}
		cfg.Plugins[i].Config = b
	}
	return nil
}

// clientExec runs a command in the client pod: inside the lab's cgroup when
// socket LB is on, so that its connect() calls meet the cgroup programs.
func (e *labEnv) clientExec(name string, args ...string) ([]byte, error) {
	if e.opts.socketLB {
		return e.lab.ExecInCgroup(e.client.NS, append([]string{name}, args...)...)
	}
	return e.client.Exec(append([]string{name}, args...)...)
}
