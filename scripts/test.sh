#!/usr/bin/env bash
# The whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian chromium + chromium-driver: the report is checked in a real browser. Without root (or sudo) this prints
# one line and the browser tests skip, unless EDGEWISE_REQUIRE_BROWSER=1 (CI), where both are failures.
bash scripts/setup_browser.sh
.venv/bin/python -m pytest -q -n 2 "$@"
