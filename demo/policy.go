package demo

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hotpath/hotpath/lab"
)

const demoPolicy = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-8082-frontend-only, namespace: demo}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {role: frontend}}}]
    ports: [{port: 8082}]
  - ports: [{port: 8080}, {port: 8081}, {protocol: UDP, port: 5353}]
`

// policy registers the pods as endpoints, applies a NetworkPolicy that keeps
// port 8082 of the web pods for frontends, shows the client's connection
// denied and the drop in `hotpath monitor`, then relabels the client.
func (d *Demo) policy(ctx context.Context) error {
	d.step("Policy: pods as endpoints (namespace + labels -> identities), a Kubernetes NetworkPolicy")
	web2 := d.lab.Pods["web2"]
	dst := web2.IP.String() + ":8082"
	if _, err := lab.EchoServer(web2.NS, dst); err != nil {
		return err
	}
	client := d.lab.Pods["client"]
	if _, err := d.cli(true, "endpoint", "add", client.IP.String(), "--namespace", "demo", "--label", "role=client"); err != nil {
		return err
	}
	for _, w := range []string{"web1", "web2", "web3"} {
		if _, err := d.cli(w == "web1", "endpoint", "add", d.lab.Pods[w].IP.String(), "--namespace", "demo", "--label", "app=web"); err != nil {
			return err
		}
	}
	d.cli(true, "endpoint", "list")
	path := filepath.Join(d.lab.Dir, "web-policy.yaml")
	if err := os.WriteFile(path, []byte(demoPolicy), 0o600); err != nil {
		return err
	}
	d.say("%s", indent(demoPolicy))
	if _, err := d.cli(true, "policy", "apply", "-f", path); err != nil {
		return err
	}

	d.step("A denied connection, seen by `hotpath monitor --type drop`")
	log := filepath.Join(d.lab.Dir, "monitor.log")
	mon, err := d.lab.Start(d.lab.Node, log, filepath.Join(d.opts.Bin, "hotpath"),
		"--bpffs", d.lab.BPFFS, "--state-dir", d.node.StateDir, "monitor", "--type", "drop")
	if err != nil {
		return err
	}
	defer mon.Stop(time.Second)
	time.Sleep(500 * time.Millisecond) // the monitor connects
	d.say("$ hotpath monitor --type drop   (in the background)")
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	err = client.Echo(cctx, "tcp", dst, []byte("hello"))
	cancel()
	if err == nil {
		return fmt.Errorf("client reached %s although the policy denies it", dst)
	}
	d.say("  client -> web2 %s: %v", dst, err)
	time.Sleep(300 * time.Millisecond)
	line := firstLine(log, "policy_denied")
	if line == "" {
		return fmt.Errorf("no policy drop in the monitor's output")
	}
	d.say("  monitor: %s", line)
	d.fact("client -> web2:8082 denied by NetworkPolicy demo/web-8082-frontend-only; monitor: %s", line)

	d.step("Relabel the client role=frontend: same pod, new identity, now allowed")
	if _, err := d.cli(true, "endpoint", "add", client.IP.String(), "--namespace", "demo", "--label", "role=frontend"); err != nil {
		return err
	}
	cctx, cancel = context.WithTimeout(ctx, 3*time.Second)
	err = client.Echo(cctx, "tcp", dst, []byte("hello"))
	cancel()
	if err != nil {
		return fmt.Errorf("client as frontend: %w", err)
	}
	d.say("  client -> web2 %s: echoed", dst)
	d.fact("after relabelling the client role=frontend the same connection is allowed")
	_, err = d.cli(true, "policy", "delete", "demo/web-8082-frontend-only")
	return err
}

// firstLine is the first line of file containing sub.
func firstLine(file, sub string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.Contains(sc.Text(), sub) {
			return strings.TrimSpace(sc.Text())
		}
	}
	return ""
}
