// Package host starts, adopts and stops plugin processes with go-plugin.
package host

import (
	"encoding/json"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/hotpath/hotpath/core/plugin"
)

const (
	// startTimeout bounds the go-plugin handshake.
	startTimeout = 10 * time.Second
	// callTimeout bounds the Describe that proves a plugin is usable.
	callTimeout = 10 * time.Second
	// killTimeout is how long Kill waits for an exit before escalating.
	killTimeout = 5 * time.Second
	// pipeGrace is how long go-plugin may keep waiting for the stdio pipes
	// of a dead plugin before we kill the rest of its process group.
	pipeGrace   = time.Second
	dialTimeout = 2 * time.Second
)

// Spec says how to start a plugin.
type Spec struct {
	Name      string          // expected Description.Name
	Path      string          // plugin binary
	SHA256    string          // hex; empty: not verified
	LogPath   string          // HOTPATH_PLUGIN_LOG for the plugin; empty: its stderr
	SocketDir string          // root-only directory for the plugin's socket; empty: $TMPDIR
	Env       []string        // extra environment, KEY=value
	Config    json.RawMessage // the plugin's config block, sent with Describe
	Owner     string          // marks the process as this owner's (OwnerEnv); empty: unmarked
}

// Instance is one running plugin process, started or adopted.
type Instance struct {
	Name     string
	Spec     Spec // only Name is set for an adopted instance
	Desc     *plugin.Description
	Datapath plugin.Datapath
	Pid      int
	Reattach Reattach
	Started  time.Time // when this host started or adopted it

	client *goplugin.Client
	rpc    goplugin.ClientProtocol
	proc   *proc
	group  bool // the plugin leads its own process group (we started it)
	log    hclog.Logger

	mu      sync.Mutex
	state   state
	stopped chan struct{} // closed when Kill is done
}

type state int

const (
	managed state = iota
	killing
	closed
)

// Exited reports whether the process is gone.
func (i *Instance) Exited() bool { return i.proc.exited() }

// Done is closed when the process is gone. After Close it may never be.
func (i *Instance) Done() <-chan struct{} { return i.proc.done }

// leave moves a managed instance to state to; it reports the old state.
func (i *Instance) leave(to state) state {
	i.mu.Lock()
	defer i.mu.Unlock()
	was := i.state
	if was == managed {
		i.state = to
	}
	return was
}

// Kill stops the plugin: a graceful go-plugin shutdown, then SIGKILL. It
// returns once the process is gone (or refuses to die, which is logged).
// Kill after Close does nothing; concurrent Kills all wait.
func (i *Instance) Kill() {
	switch i.leave(killing) {
	case closed:
		return
	case killing:
		<-i.stopped
		return
	}
	defer close(i.stopped)
	stop(i.client, i.proc, i.group, i.log)
	if i.proc.exited() && i.Reattach.Network == "unix" {
		// A plugin that exits cleanly removes its socket; one killed by a
		// signal leaves it behind in the socket directory.
		if fi, err := os.Lstat(i.Reattach.Address); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(i.Reattach.Address)
		}
	}
}

// Close stops managing the plugin without stopping it, so that another
// host (or this one, later) can adopt it. The Datapath stops working.
func (i *Instance) Close() {
	if i.leave(closed) != managed {
		return
	}
	// Not rpc.Close: go-plugin's Close asks the plugin to shut down.
	if g, ok := i.rpc.(*goplugin.GRPCClient); ok {
		g.Conn.Close()
	}
	i.proc.release()
}

// stop ends a plugin process. go-plugin's Kill asks the plugin to shut down
// over gRPC and SIGKILLs it after 2s, but then waits for the stdio pipes of a
// started plugin to close, which a grandchild can hold open forever; so we
// watch the process ourselves, SIGKILL it through the pidfd if it lingers,
// and kill its process group if go-plugin is still stuck on the pipes. It
// reports whether go-plugin's Kill has returned (and so reaped a child).
func stop(c *goplugin.Client, p *proc, group bool, log hclog.Logger) bool {
	defer p.release()
	killed := make(chan struct{})
	go func() {
		c.Kill()
		close(killed)
	}()
	if !waitFor(p.done, killTimeout) {
		log.Warn("plugin still running, sending SIGKILL", "pid", p.pid)
		p.signal(syscall.SIGKILL)
		if !waitFor(p.done, killTimeout) {
			log.Error("plugin survives SIGKILL", "pid", p.pid)
			return false
		}
	}
	if !group {
		return waitFor(killed, killTimeout)
	}
	if waitFor(killed, pipeGrace) {
		return true
	}
	// The group outlives its dead leader while members remain, so its id
	// cannot have been reused.
	log.Warn("plugin's stdio still open after exit, killing its process group", "pid", p.pid)
	syscall.Kill(-p.pid, syscall.SIGKILL)
	return waitFor(killed, killTimeout)
}

func waitFor(ch <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}
