package bench

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/supervisor"
)

// hotpathOptions are the hotpath features a lab variant changes from the
// defaults (socket LB off, direct redirects on, CT accounting on).
type hotpathOptions struct {
	socketLB     bool // lb plugin: translate at connect() for the lab's client
	noRedirect   bool // supervisor: leave forwarding to the kernel
	noAccounting bool // ct and lb plugins: no per-entry packet and byte counters
}

func (o hotpathOptions) text() string {
	t := "socket LB off"
	if o.socketLB {
		t = "socket LB on"
	}
	if o.noRedirect {
		t += ", direct redirects off"
	}
	if o.noAccounting {
		t += ", CT accounting off"
	}
	return t
}

// key names the options in variant keys.
func (o hotpathOptions) key() string {
	var parts []string
	for _, p := range []struct {
		on   bool
		name string
	}{{o.socketLB, "socklb"}, {o.noRedirect, "noredirect"}, {o.noAccounting, "noacct"}} {
		if p.on {
			parts = append(parts, p.name)
		}
	}
	if len(parts) == 0 {
		return "default"
	}
	return strings.Join(parts, "-")
}

// labOptions are the lab options a variant with o needs: socket LB needs
// the lab's own cgroup, where the client's commands run.
func labOptions(o hotpathOptions) lab.Options {
	return lab.Options{Pods: []string{"client", "b1", "b2", "b3"}, NoOffload: true, MountBPFFS: true, Cgroup: o.socketLB}
}

// applyOptions adjusts the supervisor's config and the plugins' for e's
// options.
func (e *labEnv) applyOptions(cfg *supervisor.Config) error {
	if e.opts.noRedirect {
		off := false
		cfg.DirectRedirect = &off
	}
	if e.opts.noAccounting {
		for _, name := range []string{"ct", "lb"} {
			if err := setPluginOption(cfg, name, "accounting", false); err != nil {
				return err
			}
		}
	}
	if !e.opts.socketLB {
		return nil
	}
	cfg.Cgroup = e.lab.Cgroup
	return setPluginOption(cfg, "lb", "socket_lb", true)
}

// setPluginOption sets key to v in the config block of plugin name.
func setPluginOption(cfg *supervisor.Config, name, key string, v any) error {
	for i := range cfg.Plugins {
		if cfg.Plugins[i].Name != name {
			continue
		}
		c := map[string]any{}
		if len(cfg.Plugins[i].Config) > 0 {
			if err := json.Unmarshal(cfg.Plugins[i].Config, &c); err != nil {
				return fmt.Errorf("%s config: %w", name, err)
			}
		}
		c[key] = v
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
