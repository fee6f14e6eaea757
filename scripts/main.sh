#!/usr/bin/env bash
# The main job: the report that answers the question for the built-in default networks (the question's own
# 'conv64/s4, conv64/s4' on 1x256 and a small VGG-style net): pathways, depth scaling, receptive fields,
# sensitivity, remedies, as one self-contained page with the numbers beside it. Extra arguments go to
# `edgewise report` (e.g. --train --visualize, or a MODEL and --input).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/report}
.venv/bin/edgewise report --out "$OUT" "$@"
