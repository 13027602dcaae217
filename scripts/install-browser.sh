#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (tests/browser); a no-op when it is there.
#
# Playwright drives this system browser (executable_path=/usr/bin/chromium): no browser
# build is ever downloaded by Playwright itself. Uses sudo only when not running as root.
#
# Usage: scripts/install-browser.sh   (run by `make browser`, which `make test` depends on)
set -euo pipefail

if command -v /usr/bin/chromium >/dev/null 2>&1; then
    exit 0
fi
command -v apt-get >/dev/null 2>&1 || {
    echo "install-browser: no apt-get here; install Chromium as /usr/bin/chromium by hand" >&2
    exit 1
}
as_root=()
if [[ "$(id -u)" != "0" ]]; then
    as_root=(sudo)
fi
echo "installing Debian's chromium for the browser tests (first run only)"
export DEBIAN_FRONTEND=noninteractive
if ! "${as_root[@]}" apt-get install -y --no-install-recommends chromium; then
    # A fresh machine may have no package lists yet.
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" apt-get install -y --no-install-recommends chromium
fi
/usr/bin/chromium --version
