#!/bin/sh
# Install Debian's chromium for the dashboard's browser tests when it is missing.
# Playwright drives it (its own browser download needs the network at test time; this does not).
# Usage: scripts/ensure_chromium.sh   (as root, or with sudo available)
set -eu
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_chromium: no $CHROMIUM and no apt-get; install Chromium and set CHROMIUM=/path/to/it" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "ensure_chromium: installing chromium (Debian package) for the browser tests"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
test -x "$CHROMIUM"
"$CHROMIUM" --version
