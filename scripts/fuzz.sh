#!/usr/bin/env bash
# Runs every fuzz target of the module for a short while (FUZZTIME each,
# default 3s): go test -fuzz takes one target at a time. The seed corpora
# (testdata/fuzz) already ran as ordinary tests in `go test ./...`.
set -euo pipefail
fuzztime=${FUZZTIME:-3s}
go=${GO:-go}
grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r f; do
	pkg=$(dirname "$f")
	for t in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$f"); do
		echo "fuzz $pkg $t for $fuzztime"
		$go test -run '^$' -fuzz "^$t\$" -fuzztime "$fuzztime" -parallel 1 "$pkg"
	done
done
