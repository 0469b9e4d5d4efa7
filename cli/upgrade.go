package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hotpath/hotpath/supervisor"
)

var sha256Hex = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

func upgradeCommand() *cli.Command {
	return &cli.Command{
		Name:      "upgrade",
		Usage:     "replace a plugin's binary while traffic flows; rolls back on failure",
		ArgsUsage: "NAME",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "binary", Required: true, Usage: "path of the new plugin binary"},
			&cli.StringFlag{Name: "sha256", Usage: "expected SHA-256 of the binary"},
			&cli.DurationFlag{Name: "health-window", Value: 3 * time.Second, Usage: "how long the new instance must stay healthy"},
			outputFlag,
		},
		Action: func(c *cli.Context) error {
			o, err := output(c)
			if err != nil {
				return err
			}
			if c.NArg() != 1 {
				return fmt.Errorf("plugin upgrade: want exactly one plugin name")
			}
			req, err := upgradeRequest(c)
			if err != nil {
				return err
			}
			var ans supervisor.UpgradeAnswer
			cl := newClient(c)
			cl.http.Timeout = req.HealthWindow + 2*time.Minute
			err = cl.do("POST", "/v1/plugins/"+c.Args().First()+"/upgrade", req, &ans)
			if o == "json" && ans.Result != nil {
				printJSON(os.Stdout, ans.Result)
			} else if ans.Result != nil {
				printUpgrade(ans.Result)
			}
			return err
		},
	}
}

func upgradeRequest(c *cli.Context) (supervisor.UpgradeRequest, error) {
	req := supervisor.UpgradeRequest{Binary: c.String("binary"), SHA256: strings.ToLower(c.String("sha256")), HealthWindow: c.Duration("health-window")}
	fi, err := os.Stat(req.Binary)
	switch {
	case err != nil:
		return req, fmt.Errorf("plugin upgrade: binary %s: %w", req.Binary, err)
	case fi.IsDir() || fi.Mode()&0o111 == 0:
		return req, fmt.Errorf("plugin upgrade: binary %s is not an executable file", req.Binary)
	case req.SHA256 != "" && !sha256Hex.MatchString(req.SHA256):
		return req, fmt.Errorf("plugin upgrade: sha256 %q is not 64 hex digits", req.SHA256)
	case req.HealthWindow <= 0 || req.HealthWindow > 10*time.Minute:
		return req, fmt.Errorf("plugin upgrade: health window %s is outside (0, 10m]", req.HealthWindow)
	}
	// The supervisor runs elsewhere (another directory, maybe another
	// mount namespace): a relative path means the caller's directory.
	abs, err := filepath.Abs(req.Binary)
	if err != nil {
		return req, fmt.Errorf("plugin upgrade: binary %s: %w", req.Binary, err)
	}
	req.Binary = abs
	return req, nil
}

func printUpgrade(r *supervisor.UpgradeResult) {
	if r.RolledBack {
		fmt.Printf("plugin %s: %s -> %s rolled back to generation %d: %s\n", r.Plugin, r.From, r.To, r.Previous, r.Reason)
		return
	}
	if r.Generation == 0 {
		fmt.Printf("plugin %s: upgrade refused: %s\n", r.Plugin, r.Reason)
		return
	}
	b, _ := json.Marshal(r.FlipToPacket.String())
	fmt.Printf("plugin %s: %s -> %s, generation %d -> %d in %s (flip to first packet %s), pid %d -> %d\n",
		r.Plugin, r.From, r.To, r.Previous, r.Generation, r.Duration.Round(time.Millisecond), strings.Trim(string(b), `"`), r.OldPid, r.NewPid)
}
