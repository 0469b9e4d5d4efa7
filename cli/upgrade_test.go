package cli

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestUpgradeSendsAbsoluteBinary: the supervisor does not share the
// caller's working directory, so `--binary ./hotpath-ct` must reach it as
// an absolute path into the caller's directory.
func TestUpgradeSendsAbsoluteBinary(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hotpath-ct"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for _, arg := range []string{"./hotpath-ct", "hotpath-ct", filepath.Join(dir, "hotpath-ct")} {
		set := flag.NewFlagSet("upgrade", flag.ContinueOnError)
		for _, f := range upgradeCommand().Flags {
			if err := f.Apply(set); err != nil {
				t.Fatal(err)
			}
		}
		if err := set.Parse([]string{"--binary", arg}); err != nil {
			t.Fatal(err)
		}
		req, err := upgradeRequest(cli.NewContext(App(), set, nil))
		if err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		if want := filepath.Join(dir, "hotpath-ct"); req.Binary != want {
			t.Errorf("--binary %s sent as %q, want %q", arg, req.Binary, want)
		}
	}
}
