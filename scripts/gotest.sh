#!/usr/bin/env bash
# gotest.sh [packages...]: go vet and go test against the services that
# services.sh runs, with a short report instead of the whole -v output.
#
# The full output goes to $PATCHGRID_TEST_LOG (default
# $PATCHGRID_CACHE/go-test.log). Shown: each package's result, every skipped
# test with its reason (an integration test that skipped says which service
# it missed), all output of a failed run, and a closing count line.
# With CI=true, a service that is not up is an error, not a skip.
# TEST_TIMEOUT (default 20m) bounds each test binary.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/common.sh"

pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
timeout=${TEST_TIMEOUT:-20m}
logf=${PATCHGRID_TEST_LOG:-$PATCHGRID_CACHE/go-test.log}
mkdir -p "$(dirname "$logf")"

eval "$(bash "$here/services.sh" env)"
missing=()
for v in PATCHGRID_TEST_CLICKHOUSE PATCHGRID_TEST_KAFKA PATCHGRID_CHDB_LIB; do
	if [ -n "${!v:-}" ]; then
		log "$v=${!v}"
	else
		missing+=("$v")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "${CI:-}" = true ]; then
		die "CI=true and not set (service not up): ${missing[*]}; run 'make services-up' / 'make deps'"
	fi
	log "not set, tests that need them will skip: ${missing[*]}"
fi

log "go vet ${pkgs[*]}"
go vet "${pkgs[@]}"

log "go test -count=1 -timeout=$timeout -v ${pkgs[*]} (full output: $logf)"
rc=0
go test -count=1 -timeout="$timeout" -v "${pkgs[@]}" >"$logf" 2>&1 || rc=$?

if [ "$rc" -ne 0 ]; then
	# Everything but the per-test progress lines: failures need their context.
	grep -v -E '^[[:space:]]*(=== (RUN|PAUSE|CONT|NAME)|--- PASS:)' "$logf" || true
else
	grep -E '^(ok|FAIL|\?)[[:space:]]' "$logf" || true
	# Each skip and the line before it, where -v streams t.Skip's reason.
	grep -B1 -E '^[[:space:]]*--- SKIP:' "$logf" | grep -v -E '^(--$|[[:space:]]*=== )' || true
fi

count() { grep -c -E "$1" "$logf" || true; }
passed=$(count '^[[:space:]]*--- PASS:')
failed=$(count '^[[:space:]]*--- FAIL:')
skipped=$(count '^[[:space:]]*--- SKIP:')
pkg_ok=$(count '^ok[[:space:]]')
pkg_fail=$(count '^FAIL[[:space:]]')
pkg_none=$(count '^\?[[:space:]].*\[no test files\]')
echo "packages: $pkg_ok ok, $pkg_fail failed, $pkg_none without tests"
echo "tests: $passed passed, $failed failed, $skipped skipped"
if [ "$rc" -ne 0 ]; then
	log "go test failed (exit $rc); full output in $logf"
fi
exit "$rc"
