#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (tests/web) if it is missing. Playwright
# drives /usr/bin/chromium; it never downloads a browser of its own. Idempotent and quiet.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
[ -x "$CHROMIUM" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo -n)
else
  echo "Chromium is missing and this user cannot install it: run 'apt-get install chromium' as root" >&2
  exit 1
fi

echo "installing Chromium (Debian's package) for the browser tests"
export DEBIAN_FRONTEND=noninteractive
if ! "${SUDO[@]}" apt-get install -y -qq chromium >/dev/null 2>&1; then
  "${SUDO[@]}" apt-get update -qq >/dev/null  # stale package lists: refresh once, then retry
  "${SUDO[@]}" apt-get install -y -qq chromium >/dev/null
fi
[ -x "$CHROMIUM" ] || { echo "Chromium was not installed at $CHROMIUM" >&2; exit 1; }
