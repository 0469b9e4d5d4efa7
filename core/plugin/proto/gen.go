// Package proto holds the generated Go of the plugin protocol
// (datapath.proto). Plugin authors in Go use package plugin, which wraps
// it; authors in other languages generate their own code from the .proto.
package proto

// protoc comes from Debian (protobuf-compiler, libprotobuf-dev), the Go
// generators are pinned in go.mod as tools: `make generate` gives the same
// bytes everywhere, and .ci/run checks that.
//go:generate bash gen.sh
