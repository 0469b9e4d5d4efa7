package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestTunnelAddRefusesBadInputLocally: bad routes are refused before the
// supervisor is asked (there is none here: the state dir is empty).
func TestTunnelAddRefusesBadInputLocally(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tunnel", "add", "10.241.0.0/33", "--remote", "198.51.100.2"}, "IPv4 prefix"},
		{[]string{"tunnel", "add", "10.241.0.0/16"}, "remote"},
		{[]string{"tunnel", "add", "10.241.0.0/16", "--remote", "198.51.100.2", "--vni", "0"}, "vni 0"},
		{[]string{"tunnel", "add", "10.241.0.0/16", "--remote", "198.51.100.2", "--vni", "16777216"}, "at most"},
		{[]string{"tunnel", "add"}, "want CIDR"},
		{[]string{"tunnel", "del", "bogus"}, "IPv4 prefix"},
	} {
		args := append([]string{"hotpath", "--state-dir", filepath.Join(dir, "none")}, tc.args...)
		app := App()
		app.ExitErrHandler = func(*cli.Context, error) {} // report, do not exit the test
		err := app.Run(interspersed(app, args))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}
