#!/usr/bin/env bash
# fuzz.sh [dir...]: run every fuzz target (func FuzzXxx in a _test.go file),
# or those in the given package directories, for FUZZTIME (default 10s)
# each. go test -fuzz takes one target per run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fuzztime=${FUZZTIME:-10s}

targets=$(grep -r -o -E --include='*_test.go' --exclude-dir=node_modules --exclude-dir=.git \
	'^func Fuzz[A-Za-z0-9_]*' . | sed -E 's|^\./||; s|:func |:|' | sort -u || true)

ran=0
while IFS=: read -r file name; do
	[ -n "$file" ] || continue
	dir=$(dirname "$file")
	if [ $# -gt 0 ]; then
		want=
		for d in "$@"; do [ "${d#./}" = "$dir" ] && want=1; done
		[ -n "$want" ] || continue
	fi
	echo "fuzz: $name in ./$dir for $fuzztime"
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "./$dir"
	ran=$((ran + 1))
done <<<"$targets"
echo "fuzz: $ran targets run"
