#!/usr/bin/env bash
# Type-checks the frontend (src/) with tsc against @grafana/data, runtime and
# ui. node_modules lives outside the repo, in $PATCHGRID_CACHE/grafana-plugin-ts
# (npm-ci.sh: installed again only when package-lock.json changes).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(bash "$here/npm-ci.sh" "$here" grafana-plugin-ts)"
rm -rf "$work/src"
cp -r "$here/src" "$here/tsconfig.json" "$work/"
cd "$work"
./node_modules/.bin/tsc --noEmit -p tsconfig.json
echo "typecheck: ok"
