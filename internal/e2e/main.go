package e2e

import (
	"os"
	"testing"
)

// Main runs a test binary's tests and then removes what this package built
// for them (the plugin binaries when $HOTPATH_BIN is unset, the plugin
// variants): they live for the whole binary, past any one test's cleanup,
// and would otherwise stay in the temporary directory after every run.
// Every package that uses Binaries or the variants calls it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	removeBuilds()
	os.Exit(code)
}

func removeBuilds() {
	if variantDir != "" {
		os.RemoveAll(variantDir)
	}
	if binDir != "" && binDir != os.Getenv("HOTPATH_BIN") {
		os.RemoveAll(binDir)
	}
}
