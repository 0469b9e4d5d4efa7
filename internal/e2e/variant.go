package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	variantMu  sync.Mutex
	variantDir string
	variants   = map[string]string{}
)

// Variant builds ./cmd/<cmd> with <pkg>.Version set to version, once per
// test binary, and returns its path: two builds that differ only in version,
// for upgrade tests.
func Variant(t testing.TB, cmd, pkg, version string) string {
	t.Helper()
	return build(t, cmd+"-"+version, "./cmd/"+cmd, pkg+".Version="+version)
}

// ProtocolVariant builds ./cmd/<cmd> with <pkg>.Version set to version and
// announcing another plugin protocol version: field is serveMajor or
// serveMinor of core/plugin, value the version number. For the
// compatibility tests of the plugin protocol.
func ProtocolVariant(t testing.TB, cmd, pkg, version, field, value string) string {
	t.Helper()
	return build(t, fmt.Sprintf("%s-%s-%s%s", cmd, version, field, value), "./cmd/"+cmd,
		pkg+".Version="+version, "github.com/hotpath/hotpath/core/plugin."+field+"="+value)
}

// Faulty returns an executable that runs the ct plugin with one injected
// fault (see internal/faultyct) and the given version.
func Faulty(t testing.TB, fault, version string) string {
	t.Helper()
	bin := build(t, "faultyct", "./internal/faultyct", "github.com/hotpath/hotpath/plugins/ct.Version="+version)
	script := filepath.Join(dir(t), fmt.Sprintf("faulty-%s-%s", sanitize(fault), version))
	body := fmt.Sprintf("#!/bin/sh\nHOTPATH_FAULT='%s' exec %s \"$@\"\n", fault, bin)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}

func dir(t testing.TB) string {
	variantMu.Lock()
	defer variantMu.Unlock()
	if variantDir == "" {
		d, err := os.MkdirTemp("", "hotpath-variants-")
		if err != nil {
			t.Fatal(err)
		}
		variantDir = d
	}
	return variantDir
}

// build builds pkg once per test binary under name, with one -X flag for
// each of xs (IMPORTPATH.NAME=VALUE).
func build(t testing.TB, name, pkg string, xs ...string) string {
	d := dir(t)
	variantMu.Lock()
	defer variantMu.Unlock()
	if p, ok := variants[name]; ok {
		return p
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(d, name)
	var ldflags []string
	for _, x := range xs {
		ldflags = append(ldflags, "-X", x)
	}
	c := exec.Command("go", "build", "-ldflags", strings.Join(ldflags, " "), "-o", out, pkg)
	c.Dir = root
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, b)
	}
	variants[name] = out
	return out
}
