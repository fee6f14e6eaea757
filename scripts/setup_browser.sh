#!/usr/bin/env bash
# Install Debian's Chromium and its driver for the browser check (edgewise.testing.browser) when missing; idempotent.
# When they cannot be installed (not root and no sudo, or apt-get fails) it prints ONE line saying the browser checks
# will be skipped and how to enable them, and exits 0 -- unless EDGEWISE_REQUIRE_BROWSER=1 (set by .ci/run), where
# that is an error. EDGEWISE_CHROMIUM / EDGEWISE_CHROMEDRIVER name other paths for the two programs (the tests point
# them at nothing to act out a machine without the browser); edgewise.testing.browser reads the same variables.
set -euo pipefail
CHROMIUM="${EDGEWISE_CHROMIUM:-/usr/bin/chromium}"
CHROMEDRIVER="${EDGEWISE_CHROMEDRIVER:-/usr/bin/chromedriver}"
INSTALL="as root run: apt-get install chromium chromium-driver"
version() { "$CHROMIUM" --version 2>/dev/null || echo "version unknown"; }
cannot() {  # $1: why the browser is not there
    if [ "${EDGEWISE_REQUIRE_BROWSER:-}" = "1" ]; then
        echo "setup_browser: ERROR: $1, and EDGEWISE_REQUIRE_BROWSER=1 requires the browser; $INSTALL" >&2
        exit 1
    fi
    echo "setup_browser: *** WARNING: $1, so the browser checks of the test suite will be SKIPPED; to enable them, $INSTALL ***" >&2
    exit 0
}
if [ -x "$CHROMIUM" ] && [ -x "$CHROMEDRIVER" ]; then
    echo "setup_browser: chromium and chromedriver already installed ($(version))"
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
    SUDO="sudo"  # password-less, or asks for the password on this terminal
else
    cannot "chromium is not installed at $CHROMIUM and this user is neither root nor allowed to sudo"
fi
# `env` inside sudo: sudo's env_reset would drop a DEBIAN_FRONTEND set in front of it.
if ! $SUDO apt-get update -q >/dev/null \
   || ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null; then
    cannot "apt-get could not install chromium and chromium-driver"
fi
if [ ! -x "$CHROMIUM" ] || [ ! -x "$CHROMEDRIVER" ]; then
    cannot "apt-get installed the packages but $CHROMIUM or $CHROMEDRIVER is missing"
fi
echo "setup_browser: installed chromium and chromium-driver ($(version))"
