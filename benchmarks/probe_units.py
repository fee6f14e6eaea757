"""Benchmark: the padding-aware-unit probe (``units`` then ``ablate``) on EfficientNet-Lite0 and on a spec net.

For each model, timed in the same run, each the median of ``--repeats`` calls after a warm-up (no cache):

* ``forward``: the model on the same ``n`` inputs in the same batches (the baseline: what running the model costs);
* ``units``: :func:`edgewise.probe.units.units` (one forward pass with hooks, plus one convolution per layer
  that reads padding, recomputed with the content continued);
* ``ablate``: :func:`edgewise.probe.units.ablate` (three forward passes: unablated, units silenced, control).

Run::

    .venv/bin/python benchmarks/probe_units.py [--n 32] [--repeats 3] [--json benchmarks/results/probe_units.json]
"""

from __future__ import annotations

import argparse
import json
import platform

import torch

from edgewise.probe._common import inputs, subject
from edgewise.probe.units import ablate, units

from _timing import timed  # benchmarks/ is on sys.path when a script here runs

MODELS = {"pretrained:efficientnet-lite0": None, "conv3/c16, maxpool2, 3*conv3, gap, fc10": (1, 32, 32)}




def forward(module, x, batch: int):
    with torch.no_grad():
        for s in range(0, len(x), batch):
            module(x[s:s + batch])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", metavar="FILE", default="benchmarks/results/probe_units.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"probe units: n = {args.n} inputs, batch 16, {torch.get_num_threads()} threads, torch "
          f"{torch.__version__}, {platform.machine()}, median of {args.repeats}")
    rows = []
    for ref, shape in MODELS.items():
        sub = subject(ref, shape)
        x = inputs(sub, None, args.n, 0)
        t_fwd, _ = timed(lambda: forward(sub.module, x, 16), args.repeats)
        t_units, found = timed(lambda: units(sub.module, sub.shape, data=x, progress=False), args.repeats)
        t_abl, _ = timed(lambda: ablate(sub.module, found, sub.shape, data=x, progress=False), args.repeats)
        row = {"model": ref, "shape": list(sub.shape), "n": args.n, "forward_s": t_fwd, "units_s": t_units,
               "ablate_s": t_abl, "units_per_forward": t_units / t_fwd, "ablate_per_forward": t_abl / t_fwd,
               "units_found": found.summary["units"], "filters": found.summary["filters"]}
        rows.append(row)
        print(f"  {ref} ({'x'.join(map(str, sub.shape))}): forward {t_fwd:7.2f} s | units {t_units:7.2f} s "
              f"({t_units / t_fwd:4.1f}× a forward pass) | ablate {t_abl:7.2f} s ({t_abl / t_fwd:4.1f}×) | "
              f"{row['units_found']} units of {row['filters']} filters")
    if args.json:
        doc = {"benchmark": "probe_units", "threads": torch.get_num_threads(), "torch": torch.__version__,
               "machine": platform.machine(), "repeats": args.repeats, "rows": rows}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
