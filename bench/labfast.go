package bench

import (
	"encoding/json"

	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/supervisor"
)

// hotpathOptions are the hotpath features a lab variant turns on beyond the
// default pipeline.
type hotpathOptions struct {
	socketLB bool // lb plugin: translate at connect() for the lab's client
	redirect bool // supervisor: direct redirects to pods and neighbours
}

func (o hotpathOptions) text() string {
	switch {
	case o.socketLB && o.redirect:
		return "socket LB on, direct redirects on"
	case o.socketLB:
		return "socket LB on"
	case o.redirect:
		return "direct redirects on"
	}
	return "socket LB off"
}

// key names the options in variant keys.
func (o hotpathOptions) key() string {
	switch {
	case o.socketLB && o.redirect:
		return "socklb-redirect"
	case o.socketLB:
		return "socklb"
	case o.redirect:
		return "redirect"
	}
	return "default"
}

// SocketLBHook turns socket-level load balancing on for one lab: the lab
// needs a cgroup, the lb plugin a config that attaches there, and the
// client's processes must run inside that cgroup.
type SocketLBHook struct {
	LabOptions func(o *lab.Options)
	LBConfig   func(l *lab.Lab) json.RawMessage
	// Client runs a command in the client pod inside the lab's cgroup.
	Client func(l *lab.Lab, pod *lab.Pod, name string, args ...string) ([]byte, error)
}

// Hooks for features that land beside this suite (socket LB in the lb
// plugin, direct redirects in the supervisor). A nil hook makes the
// variants that need it print pending rows, so a run never claims a feature
// it did not measure; wiring one (SetSocketLBHook, SetRedirectHook) is all a
// merge needs to add the rows.
var (
	socketLBHook *SocketLBHook
	redirectHook func(cfg *supervisor.Config)
)

// SetSocketLBHook wires socket LB into the lab variants that use it.
func SetSocketLBHook(h *SocketLBHook) { socketLBHook = h }

// SetRedirectHook wires the supervisor's direct-redirect option.
func SetRedirectHook(f func(cfg *supervisor.Config)) { redirectHook = f }

// pendingOptions says what a variant with o still needs, "" when nothing.
func pendingOptions(o hotpathOptions) string {
	switch {
	case o.socketLB && socketLBHook == nil:
		return "socket-level LB in the lb plugin (bench.SetSocketLBHook)"
	case o.redirect && redirectHook == nil:
		return "direct redirects in the supervisor (bench.SetRedirectHook)"
	}
	return ""
}

// labOptions are the lab options a variant with o needs.
func labOptions(o hotpathOptions) lab.Options {
	opts := lab.Options{Pods: []string{"client", "b1", "b2", "b3"}, NoOffload: true, MountBPFFS: true}
	if o.socketLB && socketLBHook != nil && socketLBHook.LabOptions != nil {
		socketLBHook.LabOptions(&opts)
	}
	return opts
}

// applyOptions adjusts the supervisor's config and the lb plugin's for e's
// options.
func (e *labEnv) applyOptions(cfg *supervisor.Config) {
	if e.opts.redirect && redirectHook != nil {
		redirectHook(cfg)
	}
	if !e.opts.socketLB || socketLBHook == nil || socketLBHook.LBConfig == nil {
		return
	}
	for i := range cfg.Plugins {
		if cfg.Plugins[i].Name == "lb" {
			cfg.Plugins[i].Config = socketLBHook.LBConfig(e.lab)
		}
	}
}

// clientExec runs a command in the client pod: inside the lab's cgroup when
// socket LB is on, so that its connect() calls meet the cgroup programs.
func (e *labEnv) clientExec(name string, args ...string) ([]byte, error) {
	if e.opts.socketLB && socketLBHook != nil && socketLBHook.Client != nil {
		return socketLBHook.Client(e.lab, e.client, name, args...)
	}
	return e.client.Exec(append([]string{name}, args...)...)
}
