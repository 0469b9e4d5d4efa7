package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/hotpath/hotpath/core/plugin"
)

// Datapath is the node the sync programs: the supervisor's own Invoke, the
// path `hotpath plugin invoke` takes, and the names of its plugins.
type Datapath interface {
	Invoke(ctx context.Context, name string, req *plugin.InvokeRequest) (json.RawMessage, error)
	PluginNames() []string
}

// caller sends commands to one plugin and counts what it changed.
type caller struct {
	dp      Datapath
	plugin  string
	changes int
}

func (c *caller) loaded() bool { return slices.Contains(c.dp.PluginNames(), c.plugin) }

// call runs command with args and decodes the answer into out (may be nil).
func (c *caller) call(ctx context.Context, command string, args, out any) error {
	var raw json.RawMessage
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return err
		}
		raw = b
	}
	res, err := c.dp.Invoke(ctx, c.plugin, &plugin.InvokeRequest{Command: command, Args: raw})
	if err != nil {
		return err
	}
	if out != nil {
		if err := json.Unmarshal(res, out); err != nil {
			return fmt.Errorf("plugin %s %s: decode answer: %w", c.plugin, command, err)
		}
	}
	return nil
}

// change is call for a command that changes the datapath.
func (c *caller) change(ctx context.Context, command string, args any) error {
	c.changes++
	return c.call(ctx, command, args, nil)
}
