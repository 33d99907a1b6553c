#!/usr/bin/env bash
# npm-ci.sh SRC_DIR NAME: installs the node packages pinned by
# SRC_DIR/package.json and package-lock.json into
# $PATCHGRID_CACHE/NAME/node_modules (default cache ~/.cache/patchgrid) and
# prints that work directory on stdout; npm's own output goes to stderr.
#
# node_modules lives outside the repo on purpose: inside it, `go test ./...`
# and `go vet ./...` would pick up the Go packages some npm packages ship.
# `npm ci --ignore-scripts` runs again only when package-lock.json differs
# from the work directory's copy, or when node_modules/.package-lock.json is
# missing: npm writes it last, so an interrupted install is redone. It runs
# under a lock, so that a build and a test running at the same time do not
# install into one directory together.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 SRC_DIR NAME" >&2; exit 2; }
src="$(cd "$1" && pwd)"
work="${PATCHGRID_CACHE:-$HOME/.cache/patchgrid}/$2"
for tool in node npm flock; do
	command -v "$tool" >/dev/null || { echo "npm-ci.sh: $tool not found (node and npm are needed for the Grafana plugin's frontend)" >&2; exit 1; }
done
mkdir -p "$work"
exec 9>"$work/.install.lock"
flock 9
if ! cmp -s "$src/package-lock.json" "$work/package-lock.json" || [ ! -f "$work/node_modules/.package-lock.json" ]; then
	cp "$src/package.json" "$src/package-lock.json" "$work/"
	(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2
fi
echo "$work"
