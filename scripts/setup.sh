#!/usr/bin/env bash
# Install edgewise and everything it needs into .venv (idempotent; nothing is downloaded at run time).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# torch first and pinned: an open `torch>=` would let pip pull a multi-GB build by itself.
# torchvision (the `zoo` extra) only imports beside this exact pair.
if ! .venv/bin/python -c "import torch, torchvision, sys; sys.exit(torch.__version__.split('+')[0] != '2.14.1' or torchvision.__version__.split('+')[0] != '0.29.1')" 2>/dev/null; then
    .venv/bin/pip install -q --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
fi
.venv/bin/pip install -q --disable-pip-version-check -e '.[zoo,timm,trained,experiments,ray,test]'
