#!/usr/bin/env bash
# install-chromium.sh: headless Chromium from Debian, for the tests that
# render the HTML compliance report to PNG and PDF, and poppler-utils
# (pdftoppm) to turn that PDF back into pages they can look at. Does
# nothing when both are installed; prints chromium's path.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if command -v chromium >/dev/null && command -v pdftoppm >/dev/null; then
	command -v chromium
	exit 0
fi
command -v apt-get >/dev/null || die "apt-get is needed to install chromium"
export DEBIAN_FRONTEND=noninteractive
if ! apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]'; then
	log "apt-get update"
	as_root apt-get update -q >&2
fi
log "apt-get install chromium poppler-utils"
as_root apt-get install -y -q --no-install-recommends chromium poppler-utils fonts-dejavu-core >&2
command -v chromium >/dev/null && command -v pdftoppm >/dev/null || die "chromium or pdftoppm is not on PATH after the install"
command -v chromium
