#!/usr/bin/env bash
# bundle.sh [OUTDIR]: builds the frontend bundle OUTDIR/module.js (default
# dist/) with its source map, then checks it (bundle/check.js): an AMD module
# that Grafana can load, exporting a working data source plugin.
#
# The bundler is esbuild, pinned by bundle/package-lock.json and installed
# by npm-ci.sh into $PATCHGRID_CACHE/grafana-plugin-bundle (about 12 MB, once
# per lock change). It does not need @grafana/* or React installed: Grafana
# provides them at run time, so the bundle leaves them to define().
# See bundle/build.js for the AMD wrapping.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/dist}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(bash "$here/npm-ci.sh" "$here/bundle" grafana-plugin-bundle)"
cd "$here"
NODE_PATH="$work/node_modules" node bundle/build.js src/module.ts "$out"
NODE_PATH="$work/node_modules" node bundle/check.js "$out/module.js"
