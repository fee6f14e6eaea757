#!/usr/bin/env bash
# The whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest -q -n 2 "$@"
