package cli

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hotpath/hotpath/core/services"
)

// lbCommand drives the lb plugin through the supervisor. Every argument is
// validated here, with the plugin's own parsers, before anything is sent.
// Flags may follow the VIP (Main reorders them, see interspersed).
func lbCommand() *cli.Command {
	return &cli.Command{
		Name:  "lb",
		Usage: "load balancer services (through the supervisor's lb plugin)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "plugin", Value: "lb", Usage: "name of the lb plugin in the supervisor config"},
		},
		Subcommands: []*cli.Command{
			{
				Name:  "service",
				Usage: "add, list, change and delete services",
				Subcommands: []*cli.Command{
					lbServiceAdd(), lbServiceApply(), lbServiceList(), lbServiceSetAlgorithm(), lbServiceDel(),
				},
			},
			{
				Name:  "backend",
				Usage: "add or remove one backend of a service",
				Subcommands: []*cli.Command{
					lbBackend("add", "add a backend, or change the weight of an existing one"),
					lbBackend("del", "remove a backend; its flows move to another backend"),
				},
			},
		},
	}
}

const vipUsage = "VIP:PORT/PROTO"

func lbServiceAdd() *cli.Command {
	return &cli.Command{
		Name:      "add",
		Usage:     "add a service",
		ArgsUsage: vipUsage,
		Flags:     serviceAddFlags(),
		Action: func(c *cli.Context) error {
			args, err := serviceAddArgs(c)
			if err != nil {
				return err
			}
			var s services.ServiceInfo
			if err := newClient(c).invoke(c.String("plugin"), "service-add", args, &s); err != nil {
				return err
			}
			fmt.Printf("added service %s (id %d, %s, %d backends)\n", s.VIP, s.ID, s.Algorithm, len(s.Backends))
			return nil
		},
	}
}

func lbServiceList() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list services and their backends",
		Flags: []cli.Flag{outputFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return fmt.Errorf("service list takes no arguments")
			}
			o, err := output(c)
			if err != nil {
				return err
			}
			var svcs []services.ServiceInfo
			if err := newClient(c).invoke(c.String("plugin"), "service-list", nil, &svcs); err != nil {
				return err
			}
			if o == "json" {
				if svcs == nil {
					svcs = []services.ServiceInfo{}
				}
				return printJSON(os.Stdout, svcs)
			}
			return services.WriteTable(os.Stdout, svcs)
		},
	}
}

func lbServiceSetAlgorithm() *cli.Command {
	return &cli.Command{
		Name:      "set-algorithm",
		Usage:     "change a service's algorithm; established flows keep their backend",
		ArgsUsage: vipUsage + " maglev|random|vendor",
		Flags: []cli.Flag{
			&cli.Int64Flag{Name: "maglev-table-size", Usage: "also change the Maglev table size M"},
		},
		Action: func(c *cli.Context) error {
			vip, args, err := oneVIP(c, 2)
			if err != nil {
				return err
			}
			a := services.SetAlgorithmArgs{VIP: vip, Algorithm: args[1], MaglevTableSize: c.Int64("maglev-table-size")}
			if _, _, _, err := a.Parse(); err != nil {
				return err
			}
			if err := newClient(c).invoke(c.String("plugin"), "service-set-algorithm", a, nil); err != nil {
				return err
			}
			fmt.Printf("service %s now uses %s\n", vip, strings.ToLower(a.Algorithm))
			return nil
		},
	}
}

func lbServiceDel() *cli.Command {
	return &cli.Command{
		Name:      "del",
		Usage:     "delete a service",
		ArgsUsage: vipUsage,
		Action: func(c *cli.Context) error {
			vip, _, err := oneVIP(c, 1)
			if err != nil {
				return err
			}
			if err := newClient(c).invoke(c.String("plugin"), "service-del", services.ServiceArgs{VIP: vip}, nil); err != nil {
				return err
			}
			fmt.Printf("deleted service %s\n", vip)
			return nil
		},
	}
}

func lbBackend(verb, usage string) *cli.Command {
	return &cli.Command{
		Name:      verb,
		Usage:     usage,
		ArgsUsage: vipUsage + " IP:PORT[,weight=N]",
		Action: func(c *cli.Context) error {
			vip, args, err := oneVIP(c, 2)
			if err != nil {
				return err
			}
			b, err := services.ParseBackend(args[1])
			if err != nil {
				return err
			}
			a := services.BackendArgs{VIP: vip, Backend: b.Arg()}
			if err := newClient(c).invoke(c.String("plugin"), "backend-"+verb, a, nil); err != nil {
				return err
			}
			fmt.Printf("backend %s %s service %s\n", b.Addr, map[string]string{"add": "set in", "del": "removed from"}[verb], vip)
			return nil
		},
	}
}

// oneVIP checks the argument count and parses the first argument as a VIP.
func oneVIP(c *cli.Context, n int) (string, []string, error) {
	args := c.Args().Slice()
	if len(args) != n {
		return "", nil, fmt.Errorf("%s: want %d argument(s): %s", c.Command.HelpName, n, c.Command.ArgsUsage)
	}
	v, err := services.ParseVIP(args[0])
	if err != nil {
		return "", nil, err
	}
	return v.String(), args, nil
}

// affinitySeconds turns --affinity-timeout into the whole seconds the
// datapath counts in.
func affinitySeconds(d time.Duration) (int64, error) {
	if d%time.Second != 0 {
		return 0, fmt.Errorf("affinity timeout %s: want whole seconds", d)
	}
	secs := int64(d / time.Second)
	if err := services.ValidAffinityTimeout(secs); err != nil {
		return 0, err
	}
	return secs, nil
}

// backendFlag collects repeated --backend flags. A plain string slice flag
// would split "IP:PORT,weight=N" at the comma.
type backendFlag struct {
	list []services.Backend
}

func (f *backendFlag) Set(s string) error {
	b, err := services.ParseBackend(s)
	if err != nil {
		return err
	}
	f.list = append(f.list, b)
	return nil
}

func (f *backendFlag) String() string {
	var out []string
	for _, b := range f.list {
		out = append(out, b.String())
	}
	return strings.Join(out, " ")
}

// serviceAddFlags are the flags of `lb service add` and `cluster service add`.
func serviceAddFlags() []cli.Flag {
	return []cli.Flag{
		&cli.GenericFlag{Name: "backend", Value: &backendFlag{}, Usage: "IP:PORT[,weight=N], repeat for more backends"},
		&cli.StringFlag{Name: "algorithm", Usage: "maglev, random or vendor (default: the plugin's config)"},
		&cli.Int64Flag{Name: "maglev-table-size", Usage: "Maglev table size M, a prime from 251 to 131071 (default: the plugin's config)"},
		&cli.DurationFlag{Name: "affinity-timeout", Usage: "ClientIP session affinity for this long after a client's last new connection (0: off)"},
	}
}

// serviceAddArgs reads and validates the arguments of a service add.
func serviceAddArgs(c *cli.Context) (services.ServiceAddArgs, error) {
	vip, _, err := oneVIP(c, 1)
	if err != nil {
		return services.ServiceAddArgs{}, err
	}
	secs, err := affinitySeconds(c.Duration("affinity-timeout"))
	if err != nil {
		return services.ServiceAddArgs{}, err
	}
	args := services.ServiceAddArgs{
		VIP: vip, Algorithm: c.String("algorithm"), MaglevTableSize: c.Int64("maglev-table-size"),
		AffinityTimeoutSeconds: secs,
	}
	for _, b := range c.Generic("backend").(*backendFlag).list {
		args.Backends = append(args.Backends, b.Arg())
	}
	_, err = args.Spec()
	return args, err
}
