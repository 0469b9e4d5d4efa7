package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"

	"github.com/hotpath/hotpath/cluster"
	"github.com/hotpath/hotpath/supervisor"
)

func supervisorCommand() *cli.Command {
	return &cli.Command{
		Name:  "supervisor",
		Usage: "the node's datapath owner",
		Subcommands: []*cli.Command{{
			Name:  "run",
			Usage: "run the supervisor in the foreground, in the caller's network namespace",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "bpffs", Usage: "pin root (overrides the global flag)"},
				&cli.StringFlag{Name: "state-dir", Usage: "state dir (overrides the global flag)"},
				&cli.StringSliceFlag{Name: "device", Usage: "attach the datapath to IFNAME (repeatable)"},
				&cli.StringSliceFlag{Name: "plugin", Usage: "run plugin NAME=PATH[,sha256=HEX] (repeatable)"},
				&cli.StringFlag{Name: "cgroup", Usage: "cgroup v2 directory for plugins' socket programs (default " + supervisor.DefaultCgroup + ")"},
				&cli.StringFlag{Name: "metrics-addr", Usage: "serve Prometheus /metrics on HOST:PORT"},
				&cli.StringFlag{Name: "config", Usage: "JSON config file; flags override it"},
				&cli.StringFlag{Name: "tunnel-underlay-device", Usage: "create the VXLAN overlay device over IFNAME (config \"tunnel\")"},
				&cli.StringFlag{Name: "kvstore-endpoints", Usage: "take desired state from etcd at URL[,URL] (cluster mode)"},
				&cli.StringFlag{Name: "kvstore-prefix", Usage: "etcd key prefix (default " + cluster.DefaultPrefix + ")"},
				&cli.StringFlag{Name: "node-name", Usage: "this node's name in the cluster"},
				&cli.StringFlag{Name: "node-ip", Usage: "this node's underlay IPv4 address, for other nodes' tunnel routes"},
				&cli.StringFlag{Name: "pod-cidr", Usage: "this node's pod CIDR, for other nodes' tunnel routes"},
				&cli.StringFlag{Name: "kubernetes", Usage: "take desired state from the Kubernetes API: in-cluster or a kubeconfig path (needs --node-name)"},
			},
			Action: runSupervisor,
		}},
	}
}

func supervisorConfig(c *cli.Context) (supervisor.Config, error) {
	var cfg supervisor.Config
	if path := c.String("config"); path != "" {
		f, err := supervisor.LoadConfigFile(path)
		if err != nil {
			return cfg, err
		}
		cfg = *f
	}
	if c.IsSet("bpffs") || cfg.BPFFS == "" {
		cfg.BPFFS = global(c, "bpffs")
	}
	if c.IsSet("state-dir") || cfg.StateDir == "" {
		cfg.StateDir = global(c, "state-dir")
	}
	if devs := c.StringSlice("device"); len(devs) > 0 {
		cfg.Devices = devs
	}
	for _, p := range c.StringSlice("plugin") {
		pc, err := supervisor.ParsePluginFlag(p)
		if err != nil {
			return cfg, err
		}
		replaced := false
		for i := range cfg.Plugins {
			if cfg.Plugins[i].Name == pc.Name {
				pc.Config = cfg.Plugins[i].Config
				cfg.Plugins[i], replaced = pc, true
			}
		}
		if !replaced {
			cfg.Plugins = append(cfg.Plugins, pc)
		}
	}
	if dev := c.String("tunnel-underlay-device"); dev != "" {
		if cfg.Tunnel == nil {
			cfg.Tunnel = &supervisor.TunnelConfig{}
		}
		cfg.Tunnel.UnderlayDevice = dev
	}
	if c.IsSet("cgroup") {
		cfg.Cgroup = c.String("cgroup")
	}
	if c.IsSet("metrics-addr") {
		cfg.MetricsAddr = c.String("metrics-addr")
	}
	if c.IsSet("kvstore-endpoints") {
		cfg.KVStoreEndpoints = cluster.SplitEndpoints(c.String("kvstore-endpoints"))
	}
	for flag, dst := range map[string]*string{"kvstore-prefix": &cfg.KVStorePrefix, "node-name": &cfg.NodeName, "node-ip": &cfg.NodeIP, "pod-cidr": &cfg.PodCIDR, "kubernetes": &cfg.Kubernetes} {
		if c.IsSet(flag) {
			*dst = c.String(flag)
		}
	}
	cfg.Defaults()
	return cfg, cfg.Validate()
}

func runSupervisor(c *cli.Context) error {
	cfg, err := supervisorConfig(c)
	if err != nil {
		return err
	}
	level := hclog.LevelFromString(global(c, "log-level"))
	if level == hclog.NoLevel {
		return fmt.Errorf("log level %q: want trace, debug, info, warn or error", global(c, "log-level"))
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "supervisor", Level: level, Output: os.Stderr, JSONFormat: false})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return supervisor.Run(ctx, cfg, log)
}
