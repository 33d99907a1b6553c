#!/usr/bin/env bash
# install-clickhouse.sh: clickhouse-server and clickhouse-client from Debian
# (18.16.1 on Debian 12). Does nothing when both are installed.
#
# The package would also start a system service on 9000/8123/9009. Nothing
# here uses it (services.sh runs its own server on other ports), so its start
# is suppressed during the install the way Debian's policy-rc.d allows.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PATH="$PATH:/usr/sbin:/sbin"
if command -v clickhouse-server >/dev/null && command -v clickhouse-client >/dev/null; then
	log "ClickHouse present: $(command -v clickhouse-server)"
	exit 0
fi
command -v apt-get >/dev/null || die "apt-get is needed to install clickhouse-server and clickhouse-client"

export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when apt does not know the package yet (a
# fresh machine has no lists at all).
if ! apt-cache policy clickhouse-server 2>/dev/null | grep -q 'Candidate: [0-9]'; then
	log "apt-get update"
	as_root apt-get update -q
fi

policy=/usr/sbin/policy-rc.d
made_policy=
if [ ! -e "$policy" ]; then
	as_root sh -c "printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy"
	made_policy=1
fi
cleanup() { if [ -n "$made_policy" ]; then as_root rm -f "$policy"; fi; }
trap cleanup EXIT

log "apt-get install clickhouse-server clickhouse-client"
as_root apt-get install -y -q --no-install-recommends clickhouse-server clickhouse-client
command -v clickhouse-server >/dev/null || die "clickhouse-server is not on PATH after the install"
log "ClickHouse installed: $(dpkg-query -W -f='${Version}' clickhouse-server 2>/dev/null || true)"
