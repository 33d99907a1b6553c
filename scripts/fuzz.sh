#!/usr/bin/env bash
# fuzz.sh [dir...]: run every fuzz target (func FuzzXxx in a _test.go file),
# or those in the given package directories, for FUZZTIME (default 10s)
# each. go test -fuzz takes one target per run.
#
#   FUZZTIME       duration per target (go test -fuzztime), default 10s
#   FUZZ_MATCH     only targets whose "dir:FuzzName" matches this ERE
#   FUZZ_PARALLEL  fuzzing workers per target (go test -parallel); default
#                  GOMAXPROCS. 1 keeps a shared machine usable.
#   FUZZ_LOG       append one tab-separated line per target to this file:
#                  UTC start, package dir, target, fuzztime, execs, result
#                  (what FUZZING.md records)
#   FUZZ_TIMEOUT   go test -timeout; default the fuzztime plus 10 minutes
#                  (go test's own default, 10m, would end a 10m run with a
#                  timeout of its own)
#
# A run that exits non-zero, wrote no reproducer into testdata/fuzz/FuzzXxx/
# and whose only complaint is "context deadline exceeded" is the race of
# Go's fuzzing coordinator at the end of -fuzztime (golang/go#75804, fixed
# in Go 1.27), not a finding: it is recorded as "ok (deadline race)". Any
# reproducer written fails the run. So does a run in which no fuzzing
# happened (the target skipped itself, e.g. without ../shared/data, and go
# test printed a bare "ok"): a skipped target is not a passed one.
#
# Every target runs even when one fails; a failing target (a crasher is
# written to the package's testdata/fuzz/FuzzXxx/) makes the script exit 1
# at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fuzztime=${FUZZTIME:-10s}
timeout=${FUZZ_TIMEOUT:-}
if [ -z "$timeout" ] && [[ "$fuzztime" =~ ^([0-9]+)(s|m|h)$ ]]; then
	n=${BASH_REMATCH[1]}
	case ${BASH_REMATCH[2]} in s) secs=$n ;; m) secs=$((n * 60)) ;; h) secs=$((n * 3600)) ;; esac
	timeout="$((secs + 600))s"
fi

targets=$(grep -r -o -E --include='*_test.go' --exclude-dir=node_modules --exclude-dir=.git \
	'^func Fuzz[A-Za-z0-9_]*' . | sed -E 's|^\./||; s|:func |:|' | sort -u || true)

ran=0
failed=()
out=$(mktemp)
trap 'rm -f "$out"' EXIT
while IFS=: read -r file name; do
	[ -n "$file" ] || continue
	dir=$(dirname "$file")
	if [ $# -gt 0 ]; then
		want=
		for d in "$@"; do [ "${d#./}" = "$dir" ] && want=1; done
		[ -n "$want" ] || continue
	fi
	if [ -n "${FUZZ_MATCH:-}" ] && ! [[ "$dir:$name" =~ $FUZZ_MATCH ]]; then
		continue
	fi
	echo "fuzz: $name in ./$dir for $fuzztime"
	start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	args=(-run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime")
	[ -n "${FUZZ_PARALLEL:-}" ] && args+=(-parallel "$FUZZ_PARALLEL")
	[ -n "$timeout" ] && args+=(-timeout "$timeout")
	corpus="$dir/testdata/fuzz/$name"
	before=$(ls "$corpus" 2>/dev/null | sort || true)
	result=ok
	if ! go test "${args[@]}" "./$dir" 2>&1 | tee "$out"; then
		after=$(ls "$corpus" 2>/dev/null | sort || true)
		# The failure report of the coordinator's race is the FAIL line
		# followed by exactly this message.
		if [ "$before" = "$after" ] && grep -A1 -- "^--- FAIL: $name " "$out" | tail -1 | grep -qx '[[:space:]]*context deadline exceeded'; then
			result="ok (deadline race)"
		else
			result=FAIL
			failed+=("$dir:$name")
		fi
	fi
	# The last progress line carries the total: "fuzz: elapsed: 1m0s, execs: 123 (...)".
	execs=$( (grep -o 'execs: [0-9]*' "$out" || true) | tail -1 | cut -d' ' -f2)
	if [ "$result" != FAIL ] && ! grep -q '^fuzz: elapsed: ' "$out"; then
		result="FAIL (no fuzzing ran: skipped?)"
		failed+=("$dir:$name")
	fi
	if [ -n "${FUZZ_LOG:-}" ]; then
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$start" "$dir" "$name" "$fuzztime" "${execs:-?}" "$result" >>"$FUZZ_LOG"
	fi
	ran=$((ran + 1))
done <<<"$targets"
echo "fuzz: $ran targets run, ${#failed[@]} failed"
if [ ${#failed[@]} -gt 0 ]; then
	printf 'fuzz: FAILED %s\n' "${failed[@]}"
	exit 1
fi
