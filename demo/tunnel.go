package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/hotpath/hotpath/internal/node"
	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/supervisor"
)

// tunnel shows two nodes, each with its own supervisor, joined by the
// tunnel plugin's VXLAN overlay: a pod on node A reaches a pod on node B
// and a service on node A whose backend is on node B.
func (d *Demo) tunnel(ctx context.Context) (err error) {
	d.step("Tunnel: a second lab of two nodes, each with its own supervisor, joined only by an underlay link")
	m, err := lab.NewMulti(lab.MultiOptions{Pods: [2][]string{{"cli-a"}, {"web-b"}}, MountBPFFS: true})
	if err != nil {
		return err
	}
	nodes := [2]*node.Node{node.New(m.Nodes[0], d.opts.Bin), node.New(m.Nodes[1], d.opts.Bin)}
	defer func() {
		for _, n := range nodes {
			n.Stop()
		}
		err = errors.Join(err, m.Close())
	}()
	for i, n := range m.Nodes {
		for _, p := range n.Pods {
			d.say("  node %c: pod %s %s (pod CIDR %s), underlay %s %s", 'A'+i, p.Name, p.IP, n.PodCIDR(), lab.UnderlayDevice, m.Underlay[i])
		}
	}
	for i, n := range nodes {
		cfg, err := tunnelConfig(m, i, d.opts.Bin)
		if err != nil {
			return err
		}
		args := []string{"--config", cfg, "--device", m.Nodes[i].Pods[[]string{"cli-a", "web-b"}[i]].HostIf}
		d.say("$ hotpath supervisor run %s   (node %c; config \"tunnel\": {\"underlay_device\": %q})", strings.Join(args, " "), 'A'+i, lab.UnderlayDevice)
		if err := n.Start(args...); err != nil {
			return err
		}
	}
	for i := range nodes {
		peer := 1 - i
		args := []string{"tunnel", "add", m.Nodes[peer].PodCIDR().String(), "--remote", m.Underlay[peer].String()}
		if err := d.nodeCLI(nodes[i], fmt.Sprintf("node %c", 'A'+i), args...); err != nil {
			return err
		}
	}
	if err := d.nodeCLI(nodes[0], "node A", "tunnel", "list"); err != nil {
		return err
	}
	web := m.Nodes[1].Pods["web-b"]
	srv := net.JoinHostPort(web.IP.String(), "8080")
	if _, err := lab.ServeName(web.NS, srv, "web-b on node B"); err != nil {
		return err
	}
	client := m.Nodes[0].Pods["cli-a"]
	got, err := client.AskName(ctx, "tcp", srv)
	if err != nil {
		return fmt.Errorf("tunnel: pod to pod: %w", err)
	}
	d.say("  TCP from %s (node A) to %s: %q", client.IP, srv, got)
	const vip = "10.96.0.20:80"
	if err := d.nodeCLI(nodes[0], "node A", "lb", "service", "add", vip+"/tcp", "--backend", srv); err != nil {
		return err
	}
	got, err = client.AskName(ctx, "tcp", vip)
	if err != nil {
		return fmt.Errorf("tunnel: service: %w", err)
	}
	d.say("  TCP from %s to the VIP %s on node A: %q (DNAT on A, encapsulated to B, replies back through A's reverse NAT)", client.IP, vip, got)
	d.fact("tunnel: a pod on node A reached a pod on node B and a node-A service backed on node B through the VXLAN overlay")
	return nil
}

// nodeCLI runs a hotpath command on one node of the tunnel lab and shows it.
func (d *Demo) nodeCLI(n *node.Node, where string, args ...string) error {
	out, err := n.CLI(args...)
	d.say("$ hotpath %s   (%s)", strings.Join(args, " "), where)
	shown := string(out)
	if err != nil {
		shown += err.Error()
	}
	d.say("%s", strings.TrimRight(indent(shown), "\n"))
	return err
}

// tunnelConfig writes node i's supervisor config: the overlay device over
// the underlay, and the ct, lb and tunnel plugins.
func tunnelConfig(m *lab.Multi, i int, bin string) (string, error) {
	raw, err := json.Marshal(map[string]any{"pod_cidrs": []string{m.Nodes[i].PodCIDR().String()}})
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(supervisor.Config{
		Tunnel: &supervisor.TunnelConfig{UnderlayDevice: lab.UnderlayDevice},
		Plugins: []supervisor.PluginConfig{
			{Name: "ct", Path: filepath.Join(bin, "hotpath-ct")},
			{Name: "lb", Path: filepath.Join(bin, "hotpath-lb")},
			{Name: "tunnel", Path: filepath.Join(bin, "hotpath-tunnel"), Config: raw},
		},
	})
	if err != nil {
		return "", err
	}
	path := filepath.Join(m.Nodes[i].Dir, "hotpath.json")
	return path, os.WriteFile(path, b, 0o600)
}
