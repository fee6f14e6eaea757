#!/usr/bin/env bash
# The speed benchmarks of the README's performance table, each against what a user would run instead, measured
# in the same run (one torch thread, interleaved repeats, medians). Installs the peers first (the `bench` extra:
# captum, torch-lucent, torchscan; never runtime dependencies). Results: benchmarks/results/*.json.
# Usage: bash scripts/bench.sh [NAME ...]   NAME in: pathways pathways-896 pathways-modern receptive-field
#                                            sensitivity silence weighted engine-choice visualize visualize-efficientnet
#                                            report threads
#                                            (default: all; about 25 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
R=benchmarks/results
declare -A RUN=(
    [pathways]="benchmarks/pathways.py --json $R/pathways.json"
    [pathways-896]="benchmarks/pathways.py --models resnet50 --size 896 --json $R/pathways_896.json"
    [pathways-modern]="benchmarks/pathways.py --models convnext_tiny swin_t vit_b_16 maxvit_t shufflenet_v2_x1_0 --repeats 3 --baseline-repeats 2 --json $R/pathways_modern.json"
    [receptive-field]="benchmarks/receptive_field.py --repeats 9 --json $R/receptive_field.json"
    [sensitivity]="benchmarks/sensitivity.py --json $R/sensitivity.json"
    [silence]="benchmarks/silence.py --json $R/silence.json"
    [weighted]="benchmarks/weighted.py --json $R/weighted.json"
    [engine-choice]="benchmarks/engine_choice.py --json $R/engine_choice.json"
    [visualize]="benchmarks/visualize.py --models spec --steps 16 --repeats 5 --json $R/visualize_spec.json"
    [visualize-efficientnet]="benchmarks/visualize.py --models efficientnet efficientnet-mid --steps 8 --json $R/visualize_efficientnet.json"
    [report]="benchmarks/report.py --no-train --json $R/report.json"
    [threads]="benchmarks/threads.py --json $R/threads.json"
)
ORDER=(pathways pathways-896 pathways-modern receptive-field sensitivity silence weighted engine-choice visualize visualize-efficientnet report threads)
for name in "${@:-${ORDER[@]}}"; do
    [ -n "${RUN[$name]+x}" ] || { echo "unknown benchmark '$name'; choose from: ${ORDER[*]}" >&2; exit 2; }
done
bash scripts/setup.sh
.venv/bin/pip install -q --disable-pip-version-check -e '.[bench]'
for name in "${@:-${ORDER[@]}}"; do
    echo "=== $name: $PY ${RUN[$name]}"
    # shellcheck disable=SC2086
    $PY ${RUN[$name]}
done
