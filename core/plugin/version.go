package plugin

import (
	"fmt"
	"os"
	"strconv"
)

// serveMajor and serveMinor, empty in every release build, make a plugin
// binary announce another protocol version than this package's, for the
// compatibility tests: go build -ldflags "-X
// github.com/hotpath/hotpath/core/plugin.serveMinor=0" builds a plugin that
// behaves as one of the previous minor version (no Metrics call).
var serveMajor, serveMinor string

func servedMajor() uint {
	return uint(override("serveMajor", serveMajor, ProtocolVersion))
}

func servedMinor() uint32 {
	return uint32(override("serveMinor", serveMinor, ProtocolMinor))
}

func override(name, val string, def uint64) uint64 {
	if val == "" {
		return def
	}
	v, err := strconv.ParseUint(val, 10, 32)
	if err != nil {
		// A broken test build, not a runtime condition: say so loudly.
		fmt.Fprintf(os.Stderr, "plugin: bad -X %s=%q: %v\n", name, val, err)
		os.Exit(1)
	}
	return v
}

// VersionString prints a protocol version as major.minor.
func VersionString(major uint, minor uint32) string { return fmt.Sprintf("%d.%d", major, minor) }
