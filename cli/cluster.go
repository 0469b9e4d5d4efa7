package cli

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/hotpath/hotpath/cluster"
	"github.com/hotpath/hotpath/core/services"
)

// clusterCommand writes the cluster's desired state to etcd; every node's
// supervisor programs itself from there.
func clusterCommand() *cli.Command {
	return &cli.Command{
		Name:  "cluster",
		Usage: "desired state of every node, in etcd (cluster mode)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "kvstore-endpoints", Usage: "etcd URL[,URL]", EnvVars: []string{"HOTPATH_KVSTORE_ENDPOINTS"}},
			&cli.StringFlag{Name: "kvstore-prefix", Value: cluster.DefaultPrefix, Usage: "etcd key prefix"},
		},
		Subcommands: []*cli.Command{
			{
				Name:  "service",
				Usage: "add, list and delete the cluster's services",
				Subcommands: []*cli.Command{
					{Name: "add", Usage: "add a service on every node", ArgsUsage: vipUsage, Flags: serviceAddFlags(), Action: clusterServiceAdd},
					{Name: "del", Usage: "delete a service from every node", ArgsUsage: vipUsage, Action: clusterServiceDel},
					{Name: "list", Usage: "list the cluster's services", Flags: []cli.Flag{outputFlag}, Action: clusterServiceList},
				},
			},
			{
				Name:        "node",
				Usage:       "registered nodes",
				Subcommands: []*cli.Command{{Name: "list", Usage: "list registered nodes", Flags: []cli.Flag{outputFlag}, Action: clusterNodeList}},
			},
		},
	}
}

func openStore(c *cli.Context) (*cluster.Store, error) {
	var eps string
	for _, l := range c.Lineage() {
		if l.IsSet("kvstore-endpoints") {
			eps = l.String("kvstore-endpoints")
			break
		}
	}
	if eps == "" {
		return nil, fmt.Errorf("cluster: --kvstore-endpoints URL[,URL] is required")
	}
	prefix := cluster.DefaultPrefix
	for _, l := range c.Lineage() {
		if l.IsSet("kvstore-prefix") {
			prefix = l.String("kvstore-prefix")
			break
		}
	}
	return cluster.Open(cluster.SplitEndpoints(eps), prefix)
}

func clusterServiceAdd(c *cli.Context) error {
	args, err := serviceAddArgs(c)
	if err != nil {
		return err
	}
	st, err := openStore(c)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.AddService(c.Context, args); err != nil {
		return err
	}
	fmt.Printf("added service %s (%d backends) to the cluster\n", args.VIP, len(args.Backends))
	return nil
}

func clusterServiceDel(c *cli.Context) error {
	vip, _, err := oneVIP(c, 1)
	if err != nil {
		return err
	}
	st, err := openStore(c)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.DelService(c.Context, vip); err != nil {
		return err
	}
	fmt.Printf("deleted service %s from the cluster\n", vip)
	return nil
}

func clusterServiceList(c *cli.Context) error {
	o, err := output(c)
	if err != nil {
		return err
	}
	if c.NArg() != 0 {
		return fmt.Errorf("cluster service list takes no arguments")
	}
	st, err := openStore(c)
	if err != nil {
		return err
	}
	defer st.Close()
	svcs, err := st.Services(c.Context)
	if err != nil {
		return err
	}
	if o == "json" {
		if svcs == nil {
			svcs = []services.ServiceAddArgs{}
		}
		return printJSON(os.Stdout, svcs)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "VIP\tALGORITHM\tAFFINITY\tBACKENDS")
	for _, s := range svcs {
		var bs []string
		for _, b := range s.Backends {
			bs = append(bs, b.Address)
		}
		alg := s.Algorithm
		if alg == "" {
			alg = "(plugin default)"
		}
		fmt.Fprintf(w, "%s\t%s\t%ds\t%s\n", s.VIP, alg, s.AffinityTimeoutSeconds, strings.Join(bs, " "))
	}
	return w.Flush()
}

func clusterNodeList(c *cli.Context) error {
	o, err := output(c)
	if err != nil {
		return err
	}
	st, err := openStore(c)
	if err != nil {
		return err
	}
	defer st.Close()
	nodes, err := st.Nodes(c.Context)
	if err != nil {
		return err
	}
	if o == "json" {
		if nodes == nil {
			nodes = []cluster.Node{}
		}
		return printJSON(os.Stdout, nodes)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tIP\tPOD CIDR")
	for _, n := range nodes {
		fmt.Fprintf(w, "%s\t%s\t%s\n", n.Name, n.IP, n.PodCIDR)
	}
	return w.Flush()
}

// writeCluster prints the etcd source's status, when it runs.
func writeCluster(st *cluster.Status) {
	if st == nil {
		return
	}
	fmt.Printf("\ncluster: node %s, %s", st.Node, st.State)
	if st.Reason != "" {
		fmt.Printf(" (%s)", st.Reason)
	}
	fmt.Printf(", revision %d, last sync %s\n  services %d, endpoints %d, policies %d, nodes [%s], tunnel routes %d, changes %d\n",
		st.Revision, st.LastSync.Format("15:04:05"), st.Services, st.Endpoints, st.Policies, strings.Join(st.Nodes, " "), st.Routes, st.Changes)
	for _, s := range st.Skipped {
		fmt.Printf("  skipped: %s\n", s)
	}
}
