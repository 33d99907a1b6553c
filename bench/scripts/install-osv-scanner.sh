#!/usr/bin/env bash
# install-osv-scanner.sh: the peer the benchmark measures patchgrid against,
# OSV-Scanner v2.5.0 (v2.6.0 needs Go 1.27), built once into
# $PATCHGRID_CACHE/bin outside the repo. Prints the binary's path.
# Idempotent: an existing binary of the right version is reused.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/../../scripts/common.sh"

OSV_SCANNER_VERSION=v2.5.0
bin_dir="$PATCHGRID_CACHE/bin"
bin="$bin_dir/osv-scanner"
stamp="$bin_dir/.osv-scanner.version"

if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null || true)" = "$OSV_SCANNER_VERSION" ]; then
	echo "$bin"
	exit 0
fi
mkdir -p "$bin_dir"
log "building osv-scanner $OSV_SCANNER_VERSION into $bin_dir (a few minutes the first time)"
# Outside the repo, so the build never touches patchgrid's go.mod.
(cd "$bin_dir" && GOBIN="$bin_dir" GOFLAGS=-mod=mod go install "github.com/google/osv-scanner/v2/cmd/osv-scanner@$OSV_SCANNER_VERSION")
echo "$OSV_SCANNER_VERSION" >"$stamp"
echo "$bin"
