#!/usr/bin/env bash
# Generates datapath.pb.go and datapath_grpc.pb.go from datapath.proto.
# Run from this directory (go generate does).
set -euo pipefail
root=$(cd ../../.. && pwd)
model=$(go list -m -f '{{.Dir}}' github.com/prometheus/client_model)
gen_go=$(go tool -n protoc-gen-go)
gen_grpc=$(go tool -n protoc-gen-go-grpc)
cd "$root"
protoc -I . -I "$model" -I /usr/include \
	--plugin=protoc-gen-go="$gen_go" --plugin=protoc-gen-go-grpc="$gen_grpc" \
	--go_out=. --go_opt=module=github.com/hotpath/hotpath \
	--go-grpc_out=. --go-grpc_opt=module=github.com/hotpath/hotpath \
	core/plugin/proto/datapath.proto
