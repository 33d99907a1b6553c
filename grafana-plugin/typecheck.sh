#!/usr/bin/env bash
# typecheck.sh [oldest]: type-checks the frontend (src/) with tsc against
# @grafana/data, runtime and ui: the versions of package-lock.json (13.2.2),
# or with "oldest" those of typecheck-oldest/package-lock.json (11.0.0, the
# oldest Grafana plugin.json's grafanaDependency claims). node_modules lives
# outside the repo, in $PATCHGRID_CACHE/grafana-plugin-ts[-oldest]
# (npm-ci.sh: installed again only when the lock changes).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
case "${1:-}" in
"") work="$(bash "$here/npm-ci.sh" "$here" grafana-plugin-ts)" ;;
oldest) work="$(bash "$here/npm-ci.sh" "$here/typecheck-oldest" grafana-plugin-ts-oldest)" ;;
*) echo "usage: $0 [oldest]" >&2; exit 2 ;;
esac
rm -rf "$work/src"
cp -r "$here/src" "$here/tsconfig.json" "$work/"
cd "$work"
./node_modules/.bin/tsc --noEmit -p tsconfig.json
echo "typecheck${1:+ ($1)}: ok"
