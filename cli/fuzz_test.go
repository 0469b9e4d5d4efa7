package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/hotpath/hotpath/core/plugintest"
	"github.com/hotpath/hotpath/core/services"
	"github.com/hotpath/hotpath/supervisor"
)

// Fuzz targets of every parser a user's input reaches: supervisor flags and
// config file, plugin flags, the lb service file, VIPs, backends (the ct
// and lb plugins fuzz their own configs). Properties: no panic; an error is a clear one (see
// clearError); an accepted value is valid and reads back the same after
// being written out. The committed corpus is under testdata/fuzz.

// runSupervisorFlags parses `hotpath supervisor run ARGS` the way the
// command does, without running a supervisor. ran is false when the command
// did not get as far as its action (help, usage errors).
func runSupervisorFlags(args []string) (cfg supervisor.Config, ran bool, err error) {
	app := App()
	app.Writer, app.ErrWriter = io.Discard, io.Discard
	app.ExitErrHandler = func(*cli.Context, error) {}
	run := findCommand(findCommand(app.Commands, "supervisor").Subcommands, "run")
	run.Action = func(c *cli.Context) error {
		ran = true
		cfg, err = supervisorConfig(c)
		return err
	}
	argv := append([]string{"hotpath", "supervisor", "run"}, args...)
	if e := app.Run(interspersed(app, argv)); err == nil {
		err = e
	}
	return cfg, ran, err
}

func FuzzSupervisorConfig(f *testing.F) {
	f.Add([]byte(`{"devices":["lxc0"],"plugins":[{"name":"ct","path":"/bin/hotpath-ct","config":{"gc":{"method":"batch"}}}]}`), "")
	f.Add([]byte(`{"bpffs":"/sys/fs/bpf/x","state_dir":"/run/x","metrics_addr":"127.0.0.1:9400"}`), "--device\nlxc1\n--plugin\nlb=/bin/hotpath-lb,sha256="+strings.Repeat("ab", 32))
	f.Add([]byte(`{}`), "--plugin\nct=/bin/hotpath-ct\n--plugin\nct=/other")
	f.Add([]byte(`{"devices":["lxc0","lxc0"]}`), "")
	f.Add([]byte(`{"plugins":[{"name":"CT","path":""}]}`), "--metrics-addr\n9400")
	f.Add([]byte(`{"devics":[]}`), "")
	f.Add([]byte(`[`), "--bpffs\nrelative")
	f.Add([]byte(`{}`), "--state-dir=/run/y\n--device\na-very-long-device-name")
	dir := f.TempDir()
	n := 0
	f.Fuzz(func(t *testing.T, file []byte, flags string) {
		n++
		path := filepath.Join(dir, fmt.Sprintf("c%d.json", n))
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(path)
		args := []string{"--config", path}
		if flags != "" {
			args = append(args, strings.Split(flags, "\n")...)
		}
		cfg, ran, err := runSupervisorFlags(args)
		if !ran || err != nil {
			return // refused, by urfave/cli or by us; either says why
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted config does not validate: %v", err)
		}
		// Written out as a config file, it reads back the same.
		out, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, out, 0o600); err != nil {
			t.Fatal(err)
		}
		again, ran, err := runSupervisorFlags([]string{"--config", path})
		if !ran || err != nil {
			t.Fatalf("config %s, written back, refused: %v", out, err)
		}
		if back, _ := json.Marshal(again); !bytes.Equal(back, out) {
			t.Fatalf("config %s read back as %s", out, back)
		}
	})
}

func FuzzPluginFlag(f *testing.F) {
	for _, s := range []string{"ct=/bin/hotpath-ct", "ct=/bin/hotpath-ct,sha256=" + strings.Repeat("0f", 32), "ct", "ct=", "=x",
		"ct=/x,md5=1", "ct=/x,sha256=", "ct=/a=b,sha256=1,sha256=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pc, err := supervisor.ParsePluginFlag(s)
		if err != nil {
			plugintest.ClearError(t, err, fmt.Sprintf("%q", s))
			return
		}
		back := pc.Name + "=" + pc.Path
		if pc.SHA256 != "" {
			back += ",sha256=" + pc.SHA256
		}
		again, err := supervisor.ParsePluginFlag(back)
		if err != nil || again.Name != pc.Name || again.Path != pc.Path || again.SHA256 != pc.SHA256 {
			t.Fatalf("%q parsed as %+v, written as %q, read back as %+v (%v)", s, pc, back, again, err)
		}
	})
}

func FuzzVIP(f *testing.F) {
	for _, s := range []string{"10.96.0.10:80/tcp", "10.96.0.10:53/UDP", "10.96.0.10:80", "[fd00::1]:80/tcp",
		"0.0.0.0:80/tcp", "10.96.0.10:0/tcp", "10.96.0.10:80/tcp/x", "10.96.0.010:80/tcp"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := services.ParseVIP(s)
		if err != nil {
			plugintest.ClearError(t, err, fmt.Sprintf("%q", s))
			return
		}
		again, err := services.ParseVIP(v.String())
		if err != nil || again != v {
			t.Fatalf("%q parsed as %s, read back as %s (%v)", s, v, again, err)
		}
	})
}

func FuzzBackend(f *testing.F) {
	for _, s := range []string{"10.240.2.2:8080", "10.240.2.2:8080,weight=7", "10.240.2.2:8080,weight=0",
		"10.240.2.2:8080,weight=1e3", "10.240.2.2:8080,w=2", "10.240.2.2:8080,", "127.0.0.1:80", "host:80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := services.ParseBackend(s)
		if err != nil {
			plugintest.ClearError(t, err, "backend")
			return
		}
		again, err := services.ParseBackend(b.String())
		if err != nil || again != b {
			t.Fatalf("%q parsed as %s, read back as %s (%v)", s, b, again, err)
		}
		if again, err := b.Arg().Parse(); err != nil || again != b {
			t.Fatalf("%q as JSON argument read back as %s (%v)", s, again, err)
		}
	})
}

// FuzzServiceFile fuzzes the file of `lb service apply`, read as the CLI
// and the plugin read it: strict JSON, then every service validated.
func FuzzServiceFile(f *testing.F) {
	f.Add([]byte(`[{"vip":"10.96.0.10:80/tcp","backends":[{"address":"10.240.2.2:8080"},{"address":"10.240.2.3:8080","weight":3}],"algorithm":"maglev","maglev_table_size":251}]`))
	f.Add([]byte(`[{"vip":"10.96.0.53:53/udp","backends":[],"affinity_timeout_seconds":600}]`))
	f.Add([]byte(`[{"vip":"10.96.0.10:80/tcp","backends":[{"address":"10.240.2.2:8080"},{"address":"10.240.2.2:8080"}]}]`))
	f.Add([]byte(`[{"vip":"10.96.0.10:80/tcp","backend":[]}]`))
	f.Add([]byte(`[{"vip":"10.96.0.10:80/tcp","maglev_table_size":252}]`))
	f.Add([]byte(`[{"vip":"10.96.0.10:80/tcp","backends":[{"address":"10.240.2.2:8080","weight":0}]}]`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var all []services.ServiceAddArgs
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&all); err != nil {
			return // encoding/json's errors
		}
		for _, a := range all {
			spec, err := a.Spec()
			if err != nil {
				plugintest.ClearError(t, err)
				continue
			}
			back := specArgs(spec)
			again, err := back.Spec()
			if err != nil {
				t.Fatalf("service %+v accepted, written back as %+v, refused: %v", a, back, err)
			}
			if fmt.Sprint(again) != fmt.Sprint(spec) {
				t.Fatalf("service %+v read as %+v, read back as %+v", a, spec, again)
			}
		}
	})
}

// specArgs writes a validated service back as command arguments.
func specArgs(s services.ServiceSpec) services.ServiceAddArgs {
	a := services.ServiceAddArgs{VIP: s.VIP.String(), MaglevTableSize: int64(s.TableSize), AffinityTimeoutSeconds: int64(s.AffinityTimeout)}
	if s.Algorithm != 0 {
		a.Algorithm = s.Algorithm.String()
	}
	for _, b := range s.Backends {
		a.Backends = append(a.Backends, b.Arg())
	}
	return a
}
