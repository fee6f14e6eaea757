#!/usr/bin/env bash
# Install Debian's Chromium and its driver for the browser check (edgewise.testing.browser) when missing; idempotent.
set -euo pipefail
version() { /usr/bin/chromium --version 2>/dev/null || echo "version unknown"; }
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    echo "setup_browser: chromium and chromedriver already installed ($(version))"
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "setup_browser: not root and no sudo; as root run: apt-get install chromium chromium-driver" >&2
    exit 1
fi
# `env` inside sudo: sudo's env_reset would drop a DEBIAN_FRONTEND set in front of it.
$SUDO apt-get update -q >/dev/null
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    echo "setup_browser: apt-get installed the packages but /usr/bin/chromium or /usr/bin/chromedriver is missing" >&2
    exit 1
fi
echo "setup_browser: installed chromium and chromium-driver ($(version))"
