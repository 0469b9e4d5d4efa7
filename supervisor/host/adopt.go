package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"

	"github.com/hotpath/hotpath/core/plugin"
)

// Adopt reattaches to a plugin that a previous supervisor started, and calls
// Describe to prove it is alive. If the pid is gone, its socket does not
// answer or belongs to another process, Adopt returns an error and touches
// nothing: a stale pid may by now be any process. A verified plugin with the
// wrong ABI version is killed, as Start would; one that answers to another
// name is left alone.
func Adopt(ctx context.Context, name string, config json.RawMessage, r Reattach, log hclog.Logger) (*Instance, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	inst, err := adopt(ctx, name, config, r, log)
	if err != nil {
		return nil, fmt.Errorf("adopt plugin %s: %w", name, err)
	}
	return inst, nil
}

func adopt(ctx context.Context, name string, config json.RawMessage, r Reattach, log hclog.Logger) (*Instance, error) {
	if r.ProtocolVersion != 0 && r.ProtocolVersion != plugin.ProtocolVersion {
		// go-plugin does not negotiate on reattach.
		return nil, fmt.Errorf("protocol version %d, want %d", r.ProtocolVersion, plugin.ProtocolVersion)
	}
	rc, err := r.Config()
	if err != nil {
		return nil, err
	}
	p, err := openProc(r.Pid)
	if err != nil {
		return nil, fmt.Errorf("pid %d: %w", r.Pid, err)
	}
	if p.exited() {
		p.release()
		return nil, fmt.Errorf("pid %d: exited", r.Pid)
	}
	if r.Network == "unix" {
		owner, err := socketOwner(r.Address)
		if err != nil {
			p.release()
			return nil, fmt.Errorf("pid %d: socket: %w", r.Pid, err)
		}
		if owner != r.Pid {
			p.release()
			return nil, fmt.Errorf("socket %s belongs to pid %d, not %d", r.Address, owner, r.Pid)
		}
	}
	rc.ReattachFunc = func() (runner.AttachedRunner, error) { return attached{p}, nil }
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  plugin.Handshake,
		Plugins:          plugin.PluginSet(), // not VersionedPlugins: see Reattach.Config
		Reattach:         rc,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger:           log,
	})
	inst := &Instance{
		Name:     name,
		Spec:     Spec{Name: name},
		Pid:      r.Pid,
		Reattach: r,
		Started:  time.Now(),
		client:   client,
		proc:     p,
		log:      log.With("plugin", name),
		stopped:  make(chan struct{}),
	}
	inst.rpc, err = client.Client()
	if err == nil {
		err = inst.describe(ctx, name, config)
	}
	if err != nil {
		if errors.Is(err, errABI) {
			inst.Kill()
		} else {
			inst.Close()
		}
		return nil, err
	}
	inst.Reattach.ProtocolVersion = plugin.ProtocolVersion
	inst.log.Info("plugin adopted", "pid", inst.Pid, "version", inst.Desc.Version)
	return inst, nil
}
