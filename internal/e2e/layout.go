package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

const ctPkg = "github.com/hotpath/hotpath/plugins/ct"

// CTLayout builds the ct plugin with the given version writing CT value
// layout layout (plugins/ct.CTLayout): two builds that differ in the
// layout of a shared map, for the schema migration tests.
func CTLayout(t testing.TB, version string, layout int) string {
	t.Helper()
	return build(t, fmt.Sprintf("hotpath-ct-%s-layout%d", version, layout), "./cmd/hotpath-ct",
		ctPkg+".Version="+version, fmt.Sprintf("%s.CTLayout=%d", ctPkg, layout))
}

// FaultyLayout is Faulty for a ct build writing CT value layout layout.
func FaultyLayout(t testing.TB, fault, version string, layout int) string {
	t.Helper()
	bin := build(t, fmt.Sprintf("faultyct-%s-layout%d", version, layout), "./internal/faultyct",
		ctPkg+".Version="+version, fmt.Sprintf("%s.CTLayout=%d", ctPkg, layout))
	script := filepath.Join(dir(t), fmt.Sprintf("faulty-%s-%s-layout%d", sanitize(fault), version, layout))
	body := fmt.Sprintf("#!/bin/sh\nHOTPATH_FAULT='%s' exec %s \"$@\"\n", fault, bin)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}
