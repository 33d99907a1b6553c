#!/usr/bin/env bash
# install-chdb.sh: put libchdb.so (ClickHouse embedded, from the npm package
# @chdb/lib-linux-x64-gnu) at $PATCHGRID_CACHE/chdb/lib/libchdb.so.
#
# Layout: chdb/package/ is the npm tarball unpacked as is; chdb/lib/libchdb.so
# is a symlink into it, the stable path the project uses. Does nothing when a
# sane library is already there. Prints the library's path on stdout.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

pkg="@chdb/lib-linux-x64-gnu@$CHDB_VERSION"
tarball="$CHDB_DIR/chdb-lib-linux-x64-gnu-$CHDB_VERSION.tgz"
# The real library is ~566 MB; anything far smaller is a truncated unpack.
min_size=$((100 * 1024 * 1024))

# sane reports whether $1 looks like a complete libchdb.so: big enough and an
# ELF file. With "deep" it also checks that the chDB C API is exported.
sane() {
	local f=$1
	[ -f "$f" ] || return 1
	[ "$(file_size "$f")" -ge "$min_size" ] || return 1
	[ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] || return 1
	if [ "${2:-}" = deep ]; then
		grep -a -q -F 'chdb_connect' "$f" || return 1
	fi
}

link() {
	mkdir -p "$CHDB_DIR/lib"
	ln -sfn ../package/libchdb.so "$CHDB_DIR/lib/libchdb.so.tmp"
	mv -T "$CHDB_DIR/lib/libchdb.so.tmp" "$CHDB_LIB"
}

if sane "$CHDB_LIB"; then
	log "chDB $CHDB_VERSION present: $CHDB_LIB"
	echo "$CHDB_LIB"
	exit 0
fi
# An earlier cache layout had only package/libchdb.so: adopt it.
if sane "$CHDB_DIR/package/libchdb.so"; then
	link
	log "chDB $CHDB_VERSION present: $CHDB_LIB"
	echo "$CHDB_LIB"
	exit 0
fi

command -v npm >/dev/null || die "npm is needed to fetch $pkg"
mkdir -p "$CHDB_DIR"
tmp=$(mktemp -d "$CHDB_DIR/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# A tarball left by an interrupted run is reused if it is a valid gzip.
if [ -f "$tarball" ] && gzip -t "$tarball" 2>/dev/null; then
	log "reusing $tarball"
else
	rm -f "$tarball"
	log "downloading $pkg (about 178 MB) with npm pack"
	# A private npm cache inside tmp: the tarball is kept in our cache only,
	# not a second time in ~/.npm.
	(cd "$tmp" && npm pack --silent --cache "$tmp/npm-cache" "$pkg" >/dev/null)
	mv "$tmp/$(basename "$tarball")" "$tarball" ||
		die "npm pack did not produce $(basename "$tarball")"
fi

log "unpacking $tarball"
mkdir "$tmp/unpack"
tar -xzf "$tarball" -C "$tmp/unpack"
sane "$tmp/unpack/package/libchdb.so" deep ||
	die "unpacked libchdb.so is missing, too small or not the chDB library: $tmp/unpack/package/libchdb.so"

rm -rf "$CHDB_DIR/package"
mv "$tmp/unpack/package" "$CHDB_DIR/package"
link
# The unpacked library is all we need; the tarball would only double the disk use.
rm -f "$tarball"
log "chDB $CHDB_VERSION installed: $CHDB_LIB ($(file_size "$CHDB_LIB") bytes)"
echo "$CHDB_LIB"
