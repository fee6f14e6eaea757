#!/usr/bin/env bash
# The main job: the question answered for the built-in default network (pathways, receptive fields,
# sensitivity, perturbation, theory, padding alternatives) plus depth scaling; figures and numbers in out/.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out}
.venv/bin/edgewise paths --out "$OUT"
.venv/bin/edgewise paths "conv64/s4, conv64/s4" --input 1x256 --padding same --out "$OUT/question"
.venv/bin/edgewise rf --out "$OUT"
.venv/bin/edgewise diagram "4*conv3" --input 1x9 --padding valid --out "$OUT/pascal.svg"
.venv/bin/edgewise scaling conv3 --depths 1:64 --out "$OUT/scaling"
.venv/bin/edgewise answer --out "$OUT/answer"
echo "figures and numbers written to $OUT/"
