package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestDatapathShowRefusesArguments: extra arguments are refused before the
// supervisor is asked (there is none here: the state dir is empty).
func TestDatapathShowRefusesArguments(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"datapath", "show", "eth0"}, "takes no arguments"},
		{[]string{"datapath", "show", "-o", "json", "x", "y"}, "takes no arguments"},
		{[]string{"datapath", "show", "-o", "yaml"}, "want json or table"},
		{[]string{"datapath", "show"}, "supervisor not reachable"},
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
