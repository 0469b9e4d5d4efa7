#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks for building, testing and the
# demo. Idempotent and quiet when everything is present.
set -euo pipefail
need=()
for tool in clang:clang llvm-strip:llvm bpftool:bpftool ip:iproute2 ethtool:ethtool iperf3:iperf3 nsenter:util-linux nft:nftables iptables-restore:iptables protoc:protobuf-compiler etcd:etcd-server; do
	cmd=${tool%%:*} pkg=${tool#*:}
	command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
[ -e /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
# The well-known protos the plugin protocol's imports pull in.
[ -e /usr/include/google/protobuf/timestamp.proto ] || need+=(libprotobuf-dev)
if [ ${#need[@]} -gt 0 ]; then
	echo "installing: ${need[*]}"
	if [ "$(id -u)" != 0 ]; then
		echo "deps: need root to apt-get install ${need[*]}" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# A bpf filesystem at the default root, for the demo and ad-hoc use.
if ! grep -qs ' /sys/fs/bpf bpf ' /proc/mounts; then
	mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
fi
