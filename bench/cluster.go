package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/hotpath/hotpath/cluster/underlay"
	"github.com/hotpath/hotpath/core/services"
	"github.com/hotpath/hotpath/internal/node"
	"github.com/hotpath/hotpath/lab"
)

// clusterNodes is how many node namespaces the cluster suite runs.
const clusterNodes = 3

// clusterSuite: etcd propagation. Three lab nodes joined by an underlay
// with a real etcd, each running the supervisor (ct and lb) in cluster
// mode. Each run writes one service with `hotpath cluster service add` and
// measures, per node, the time until the node's lb plugin lists it
// (polled through the control socket every 5 ms); the sample is the
// slowest node's. The CLI's own start and etcd write are included.
func clusterSuite(c *Context) (rows []Row, err error) {
	dir, err := os.MkdirTemp("", "hotpath-bench-cluster-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	net, err := underlay.New(dir)
	if err != nil {
		return nil, err
	}
	var nodes []*node.Node
	cleanup := func() {
		for _, n := range nodes {
			n.Stop()
			n.Lab.Close()
		}
		net.Close()
	}
	untrack := track(cleanup)
	defer func() {
		untrack()
		cleanup()
	}()
	if err := net.Etcd.Start(); err != nil {
		return nil, err
	}
	for i := range clusterNodes {
		n, err := clusterNode(c, net, i)
		if n != nil {
			nodes = append(nodes, n)
		}
		if err != nil {
			return nil, err
		}
	}
	var worst []float64
	for run := range c.Runs {
		vip := fmt.Sprintf("10.96.1.%d:80/tcp", run+1)
		start := time.Now()
		argv := append(net.Wrap(), filepath.Join(c.Bin, "hotpath"), "cluster", "--kvstore-endpoints", net.Etcd.ClientURL,
			"service", "add", vip, "--backend", "10.240.1.2:8080")
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("cluster service add: %v: %s", err, out)
		}
		took, err := propagation(nodes, vip, start)
		if err != nil {
			return nil, err
		}
		worst = append(worst, took.Seconds())
		c.Logf("cluster run %d/%d: %s on every node after %s", run+1, c.Runs, vip, took.Round(time.Millisecond))
	}
	return []Row{{Name: fmt.Sprintf("etcd propagation: `hotpath cluster service add` until the slowest of %d nodes lists the service", clusterNodes),
		Unit: UnitSeconds, Samples: worst, Target: Below(1.0), Tail: true}}, nil
}

// clusterNode starts node i: a lab with one pod, joined to the underlay,
// its supervisor in cluster mode.
func clusterNode(c *Context, net *underlay.Net, i int) (*node.Node, error) {
	l, err := lab.New(lab.Options{Pods: []string{"web"}, NoOffload: true, MountBPFFS: true})
	if err != nil {
		return nil, err
	}
	n := node.New(l, c.Bin)
	if err := net.Join(i, l.Node.Name); err != nil {
		return n, err
	}
	args := []string{"--plugin", "ct=" + filepath.Join(c.Bin, "hotpath-ct"), "--plugin", "lb=" + filepath.Join(c.Bin, "hotpath-lb"),
		"--kvstore-endpoints", net.Etcd.ClientURL, "--node-name", fmt.Sprintf("node%d", i), "--node-ip", underlay.NodeIP(i)}
	for _, d := range n.Devices() {
		args = append(args, "--device", d)
	}
	return n, n.Start(args...)
}

// propagation waits until every node lists vip and returns the slowest
// node's time since start.
func propagation(nodes []*node.Node, vip string, start time.Time) (time.Duration, error) {
	type res struct {
		d   time.Duration
		err error
	}
	ch := make(chan res, len(nodes))
	for _, n := range nodes {
		go func() {
			for time.Since(start) < 10*time.Second {
				out, err := n.CLI("plugin", "invoke", "lb", "service-list")
				if err == nil {
					var svcs []services.ServiceInfo
					if json.Unmarshal(out, &svcs) == nil && hasVIP(svcs, vip) {
						ch <- res{d: time.Since(start)}
						return
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
			ch <- res{err: fmt.Errorf("%s not programmed within 10s", vip)}
		}()
	}
	var worst time.Duration
	for range nodes {
		r := <-ch
		if r.err != nil {
			return 0, r.err
		}
		worst = max(worst, r.d)
	}
	return worst, nil
}

func hasVIP(svcs []services.ServiceInfo, vip string) bool {
	for _, s := range svcs {
		if s.VIP == vip {
			return true
		}
	}
	return false
}
