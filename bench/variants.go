package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// variantBuilds are two builds of each upgraded plugin that differ only in
// their version string, so that every upgrade really replaces the running
// binary with another one.
type variantBuilds struct {
	dir     string
	builds  map[string][2]string // plugin name -> paths of build a and b
	untrack func()
}

// variantVersions are the versions the two builds report.
var variantVersions = [2]string{"0.0.0-bench-a", "0.0.0-bench-b"}

// buildVariants builds ./cmd/hotpath-<name> twice for every name, with
// -ldflags -X github.com/hotpath/hotpath/plugins/<name>.Version set, into a
// fresh temporary directory. It needs the Go toolchain and the module's
// source, which `make bench` has.
func buildVariants(names ...string) (v *variantBuilds, err error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "hotpath-bench-variants-")
	if err != nil {
		return nil, err
	}
	v = &variantBuilds{dir: dir, builds: map[string][2]string{}}
	v.untrack = track(func() { os.RemoveAll(dir) })
	defer func() {
		if err != nil {
			v.close()
		}
	}()
	for _, name := range names {
		var paths [2]string
		for i, version := range variantVersions {
			paths[i] = filepath.Join(dir, "hotpath-"+name+"-"+version)
			ldflags := fmt.Sprintf("-X github.com/hotpath/hotpath/plugins/%s.Version=%s", name, version)
			cmd := exec.Command("go", "build", "-ldflags", ldflags, "-o", paths[i], "./cmd/hotpath-"+name)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				return v, fmt.Errorf("build %s %s: %v: %s", name, version, err, tail(out, 1000))
			}
		}
		v.builds[name] = paths
	}
	return v, nil
}

func (v *variantBuilds) close() {
	os.RemoveAll(v.dir)
	v.untrack()
}

// moduleRoot is the directory of the hotpath module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("the upgrade suite builds plugin variants: run it inside the hotpath module")
	}
	return filepath.Dir(mod), nil
}
