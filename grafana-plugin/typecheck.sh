#!/usr/bin/env bash
# Type-checks the frontend (src/) with tsc against @grafana/data, runtime and
# ui. node_modules lives outside the repo, in $PATCHGRID_CACHE: inside it,
# `go test ./...` would pick up the Go packages some npm packages ship.
# The install is redone only when package-lock.json changes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="${PATCHGRID_CACHE:-$HOME/.cache/patchgrid}/grafana-plugin-ts"
mkdir -p "$work"
if ! cmp -s "$here/package-lock.json" "$work/package-lock.json" || [ ! -d "$work/node_modules" ]; then
	cp "$here/package.json" "$here/package-lock.json" "$work/"
	(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
rm -rf "$work/src"
cp -r "$here/src" "$here/tsconfig.json" "$work/"
cd "$work"
./node_modules/.bin/tsc --noEmit -p tsconfig.json
echo "typecheck: ok"
