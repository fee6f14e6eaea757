#!/usr/bin/env bash
# The whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_browser.sh   # Debian chromium + chromium-driver: the report is checked in a real browser
.venv/bin/python -m pytest -q -n 2 "$@"
