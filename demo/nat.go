package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/supervisor"
)

// natConfig writes the supervisor config that runs the nat plugin,
// masquerading the pods behind the uplink, and the lb plugin's socket LB
// (its programs attach to --cgroup); it returns the config's path. ct comes
// before lb as on the command line, which keeps this block and the order.
func (d *Demo) natConfig() (string, error) {
	raw, err := json.Marshal(map[string]any{"masquerade_device": lab.UplinkDevice, "cluster_cidrs": []string{"10.240.0.0/16"}})
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(supervisor.Config{Plugins: []supervisor.PluginConfig{
		{Name: "nat", Path: filepath.Join(d.opts.Bin, "hotpath-nat"), Config: raw},
		{Name: "ct", Path: filepath.Join(d.opts.Bin, "hotpath-ct")},
		{Name: "lb", Path: filepath.Join(d.opts.Bin, "hotpath-lb"), Config: json.RawMessage(`{"socket_lb":true}`)},
	}})
	if err != nil {
		return "", err
	}
	path := filepath.Join(d.lab.Dir, "hotpath.json")
	return path, os.WriteFile(path, b, 0o600)
}

// masquerade shows a pod reaching the external namespace, which has no
// route to the pods, through the node's address.
func (d *Demo) masquerade(ctx context.Context) error {
	d.step("Masquerade: the client pod reaches an external server that has no route to the pods")
	x := d.lab.External
	srv := lab.ExternalIP.String() + ":80"
	if _, err := lab.ServePeer(x, srv); err != nil {
		return err
	}
	if _, err := lab.UDPServePeer(x, lab.ExternalIP.String()+":53"); err != nil {
		return err
	}
	client := d.lab.Pods["client"]
	d.say("  external server %s (namespace %s behind %s %s) answers with the address it sees", srv, x.Name, lab.UplinkDevice, lab.UplinkIP)
	var seen []string
	for _, network := range []string{"tcp", "udp"} {
		addr := srv
		if network == "udp" {
			addr = lab.ExternalIP.String() + ":53"
		}
		got, err := client.AskName(ctx, network, addr)
		if err != nil {
			return fmt.Errorf("masquerade %s: %w", network, err)
		}
		if !strings.HasPrefix(got, lab.UplinkIP.String()+":") {
			return fmt.Errorf("masquerade %s: the server saw %s, not the node's address", network, got)
		}
		d.say("  %s from client %s: the server saw %s", strings.ToUpper(network), client.IP, got)
		seen = append(seen, got)
	}
	if _, err := d.cli(true, "nat", "list"); err != nil {
		return err
	}
	d.fact("client %s reached %s (no route back to the pods) as %s (TCP) and %s (UDP): masquerade by the nat plugin",
		client.IP, lab.ExternalIP, seen[0], seen[1])
	return nil
}
