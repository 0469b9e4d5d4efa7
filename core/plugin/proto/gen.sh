#!/usr/bin/env bash
# Generates datapath.pb.go and datapath_grpc.pb.go from datapath.proto.
# Run from this directory (go generate does).
set -euo pipefail
root=$(cd ../../.. && pwd)
# metrics.proto comes from the client_model module go.mod pins (on a fresh
# machine it may not be downloaded yet).
go mod download github.com/prometheus/client_model
model=$(go list -m -f '{{.Dir}}' github.com/prometheus/client_model)
[ -f "$model/io/prometheus/client/metrics.proto" ] || { echo "gen.sh: no metrics.proto under '$model'" >&2; exit 1; }
gen_go=$(go tool -n protoc-gen-go)
gen_grpc=$(go tool -n protoc-gen-go-grpc)
cd "$root"
protoc -I . -I "$model" -I /usr/include \
	--plugin=protoc-gen-go="$gen_go" --plugin=protoc-gen-go-grpc="$gen_grpc" \
	--go_out=. --go_opt=module=github.com/hotpath/hotpath \
	--go-grpc_out=. --go-grpc_opt=module=github.com/hotpath/hotpath \
	core/plugin/proto/datapath.proto
