package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// refusal is a command line the CLI must refuse with an error containing
// want.
type refusal struct {
	args []string
	want string
}

// expectRefused runs each command line against a state dir without a
// supervisor: bad input must be refused before one is asked.
func expectRefused(t *testing.T, cases []refusal) {
	t.Helper()
	dir := t.TempDir()
	for _, tc := range cases {
		args := append([]string{"hotpath", "--state-dir", filepath.Join(dir, "none")}, tc.args...)
		app := App()
		app.ExitErrHandler = func(*cli.Context, error) {} // report, do not exit the test
		err := app.Run(interspersed(app, args))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}
