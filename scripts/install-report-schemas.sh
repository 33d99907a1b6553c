#!/usr/bin/env bash
# install-report-schemas.sh: put the published JSON schemas the local
# report's SARIF and CycloneDX output is validated against (tests of
# analytics/localreport) in $PATCHGRID_CACHE/report-schemas. Does nothing when
# they are there. Prints the directory on stdout.
#
#   sarif-2.1.0-rtm.5.json        from npm @microsoft/jest-sarif (lib/schemas/)
#   bom-1.6.SNAPSHOT.schema.json  from npm @cyclonedx/cyclonedx-library (res/schema/),
#   spdx.SNAPSHOT.schema.json     with the two schemas bom-1.6 refers to
#   jsf-0.82.SNAPSHOT.schema.json
#
# The schemas are never copied into the repo.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SARIF_PKG=@microsoft/jest-sarif@1.0.0-beta.0
CDX_PKG=@cyclonedx/cyclonedx-library@10.3.0
dir="$PATCHGRID_CACHE/report-schemas"
files=(sarif-2.1.0-rtm.5.json bom-1.6.SNAPSHOT.schema.json spdx.SNAPSHOT.schema.json jsf-0.82.SNAPSHOT.schema.json)

present() {
	local f
	for f in "${files[@]}"; do
		[ -s "$dir/$f" ] || return 1
	done
	# A half-written file from an interrupted run would not parse.
	command -v node >/dev/null || return 0
	for f in "${files[@]}"; do
		node -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$dir/$f" 2>/dev/null || return 1
	done
}

if present; then
	log "report schemas present: $dir"
	echo "$dir"
	exit 0
fi

command -v npm >/dev/null || die "npm is needed to fetch $SARIF_PKG and $CDX_PKG"
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# fetch PKG PATH...: npm pack PKG (a private npm cache inside tmp) and copy
# package/PATH of each file into tmp/out.
fetch() {
	local pkg=$1
	shift
	log "downloading $pkg with npm pack"
	(cd "$tmp" && npm pack --silent --cache "$tmp/npm-cache" "$pkg" >/dev/null)
	local tgz
	tgz=$(ls -t "$tmp"/*.tgz | head -n 1)
	mkdir -p "$tmp/unpack" "$tmp/out"
	tar -xzf "$tgz" -C "$tmp/unpack" "${@/#/package/}"
	local p
	for p in "$@"; do
		cp "$tmp/unpack/package/$p" "$tmp/out/"
	done
	rm -f "$tgz"
}

fetch "$SARIF_PKG" lib/schemas/sarif-2.1.0-rtm.5.json
fetch "$CDX_PKG" res/schema/bom-1.6.SNAPSHOT.schema.json res/schema/spdx.SNAPSHOT.schema.json res/schema/jsf-0.82.SNAPSHOT.schema.json
mv "$tmp"/out/* "$dir/"
present || die "report schemas incomplete in $dir"
log "report schemas installed: $dir"
echo "$dir"
