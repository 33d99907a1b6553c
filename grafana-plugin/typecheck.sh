#!/usr/bin/env bash
# typecheck.sh [oldest] [PLUGIN_DIR]: type-checks the frontend
# (PLUGIN_DIR/src with PLUGIN_DIR/tsconfig.json; default this directory)
# with tsc against @grafana/data, runtime and ui: the versions of
# package-lock.json (13.2.2), or with "oldest" those of
# typecheck-oldest/package-lock.json (11.0.0, the oldest Grafana
# plugin.json's grafanaDependency claims; `make test` runs this one, through
# TestTypecheckOldest). node_modules lives outside the repo, in
# $PATCHGRID_CACHE/grafana-plugin-ts[-oldest] (npm-ci.sh: installed again
# only when the lock changes; the oldest set is about 600 MB and takes
# minutes to install, seconds to use).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
oldest=
if [ "${1:-}" = oldest ]; then
	oldest=1
	shift
fi
[ $# -le 1 ] || { echo "usage: $0 [oldest] [PLUGIN_DIR]" >&2; exit 2; }
src="$(cd "${1:-$here}" && pwd)"
if [ -n "$oldest" ]; then
	work="$(bash "$here/npm-ci.sh" "$here/typecheck-oldest" grafana-plugin-ts-oldest)"
else
	work="$(bash "$here/npm-ci.sh" "$here" grafana-plugin-ts)"
fi
# A directory of its own inside the work directory: tsc finds node_modules
# in the parent, and two checks at once (make test and a build) do not
# overwrite each other's sources.
check="$(mktemp -d "$work/check.XXXXXX")"
trap 'rm -rf "$check"' EXIT
cp -r "$src/src" "$src/tsconfig.json" "$check/"
cd "$check"
"$work/node_modules/.bin/tsc" --noEmit -p tsconfig.json
echo "typecheck${oldest:+ (oldest)}: ok"
