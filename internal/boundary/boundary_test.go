// Package boundary holds the test that keeps the SDK boundary of issue 8:
// core/ is all a plugin imports, no plugin imports another, and the product
// CLI links no lab, demo, bench, plugin or test code of ours.
package boundary

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/hotpath/hotpath"

// pkg is what `go list -json` says of one package.
type pkg struct {
	ImportPath string
	Imports    []string
	Module     *struct{ Path string }
}

// root is the repository root, found from this file.
func root(t *testing.T) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// deps lists every package target depends on (itself included), run in dir.
func deps(t *testing.T, dir, target string) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json", target)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list -deps %s: %v\n%s", target, err, ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %v", target, err)
	}
	var all []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		all = append(all, p)
	}
	if len(all) == 0 {
		t.Fatalf("go list -deps %s listed nothing", target)
	}
	return all
}

// ours returns the module-relative paths of our packages among ps.
func ours(ps []pkg) []string {
	var out []string
	for _, p := range ps {
		if rel, ok := strings.CutPrefix(p.ImportPath, module+"/"); ok {
			out = append(out, rel)
		}
	}
	return out
}

func under(rel, dir string) bool { return rel == dir || strings.HasPrefix(rel, dir+"/") }

// TestCLILinksNoLabDemoPluginOrTests: bin/hotpath is the product. go-plugin
// itself imports "testing" (its testing.go has no build tag), so the rule
// checked is that none of our packages in the binary imports it.
func TestCLILinksNoLabDemoPluginOrTests(t *testing.T) {
	ps := deps(t, root(t), "./cmd/hotpath")
	for _, p := range ps {
		rel, ok := strings.CutPrefix(p.ImportPath, module+"/")
		if !ok {
			continue
		}
		for _, bad := range []string{"lab", "demo", "bench", "plugins", "internal", "examples"} {
			if under(rel, bad) {
				t.Errorf("cmd/hotpath links %s", rel)
			}
		}
		if slices.Contains(p.Imports, "testing") {
			t.Errorf("cmd/hotpath links %s, which imports testing", rel)
		}
	}
	if !slices.Contains(ours(ps), "supervisor") {
		t.Errorf("cmd/hotpath does not link the supervisor: the check looked at the wrong thing")
	}
}

// TestPluginMainsLinkOnlyTheSDK: a plugin binary links core/ and its own
// plugin, never another plugin, the supervisor, the lab or test helpers.
func TestPluginMainsLinkOnlyTheSDK(t *testing.T) {
	mains, err := filepath.Glob(filepath.Join(root(t), "cmd", "hotpath-*"))
	if err != nil || len(mains) < 3 {
		t.Fatalf("plugin mains under cmd/: %v %v", mains, err)
	}
	for _, dir := range mains {
		name := strings.TrimPrefix(filepath.Base(dir), "hotpath-")
		for _, rel := range ours(deps(t, root(t), "./cmd/"+filepath.Base(dir))) {
			switch {
			case under(rel, "core"), under(rel, "plugins/"+name), rel == "cmd/hotpath-"+name:
			default:
				t.Errorf("%s links %s", filepath.Base(dir), rel)
			}
		}
	}
}

// TestSDKImportsOnlyItself: core/ is self-contained, so a vendor plugin built
// on it needs nothing else of ours (the lab is allowed for the test package,
// which wires harnesses into lab namespaces).
func TestSDKImportsOnlyItself(t *testing.T) {
	for _, rel := range ours(deps(t, root(t), "./core/...")) {
		if !under(rel, "core") && rel != "lab" {
			t.Errorf("core/ depends on %s", rel)
		}
	}
}

// TestPluginsImportNoOtherPlugin covers the plugin packages themselves, tests
// excluded: a plugin may use only core/ and its own subpackages.
func TestPluginsImportNoOtherPlugin(t *testing.T) {
	for _, p := range deps(t, root(t), "./plugins/...") {
		rel, ok := strings.CutPrefix(p.ImportPath, module+"/")
		if !ok || !under(rel, "plugins") {
			continue
		}
		self := strings.Join(strings.SplitN(rel, "/", 3)[:2], "/")
		for _, imp := range p.Imports {
			dep, ok := strings.CutPrefix(imp, module+"/")
			if ok && !under(dep, "core") && !under(dep, self) {
				t.Errorf("%s imports %s", rel, dep)
			}
		}
	}
}
