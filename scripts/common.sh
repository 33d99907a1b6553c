# Shared by the install and service scripts; sourced, never run.
#
# Everything downloaded or generated lives outside the repo, under
# PATCHGRID_CACHE (default ~/.cache/patchgrid), so a fresh clone reuses it
# and a second run downloads nothing.

PATCHGRID_CACHE="${PATCHGRID_CACHE:-${HOME:-/root}/.cache/patchgrid}"
# Service config, data, logs and PID files. Kept beside the cache rather than
# in /tmp: /tmp may be a tmpfs or cleaned between runs, which would orphan
# running servers from their PID files.
PATCHGRID_RUN_DIR="${PATCHGRID_RUN_DIR:-$PATCHGRID_CACHE/run}"

CHDB_VERSION=26.7.3-stable.1
CHDB_DIR="$PATCHGRID_CACHE/chdb"
# The stable path schemas/store defaults to; a symlink into the npm layout.
CHDB_LIB="$CHDB_DIR/lib/libchdb.so"

KAFKA_VERSION=4.1.1
KAFKA_HOME="$PATCHGRID_CACHE/kafka-$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_HOME/libs"

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Under set -e a failing command would end the script without a word: say
# which one.
set -E
trap 'log "error: line $LINENO: \"$BASH_COMMAND\" failed (exit $?)"' ERR

# as_root runs a command as root, through sudo when we are not root.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root for: $*"
	fi
}

# file_size prints a file's size in bytes (following symlinks).
file_size() { stat -L -c %s "$1"; }
