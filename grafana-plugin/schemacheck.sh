#!/usr/bin/env bash
# schemacheck.sh [PLUGIN_DIR]: checks PLUGIN_DIR/src/plugin.json and every
# dashboard of PLUGIN_DIR/src/dashboards (default: this directory) against
# the schema types Grafana publishes on npm: @grafana/schema's Dashboard
# (generated from Grafana's CUE dashboard kind) and @grafana/data's
# DataSourcePluginMeta, with tsc --strict (see schemacheck/check.js).
#
# Grafana publishes no JSON Schema of either file on npm (its
# plugin.schema.json lives only in its repositories), so the typed schema
# is what is checked. The packages, pinned by schemacheck/package-lock.json
# (about 180 MB), are installed by npm-ci.sh into
# $PATCHGRID_CACHE/grafana-plugin-schema, once per lock change.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
plugin="$(cd "${1:-$here}" && pwd)"
work="$(bash "$here/npm-ci.sh" "$here/schemacheck" grafana-plugin-schema)"
check="$(mktemp -d "$work/check.XXXXXX")"
trap 'rm -rf "$check"' EXIT
node "$here/schemacheck/check.js" "$check" "$plugin"
ln -s ../node_modules "$check/node_modules"
cd "$check"
../node_modules/.bin/tsc -p tsconfig.json
echo "schemacheck: ok"
