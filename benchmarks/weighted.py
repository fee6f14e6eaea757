"""Benchmark: the weighted paths against the Monte-Carlo sensitivity they predict, and against plain gradient passes.

For each model, at the same N initialisations (the builder's weights for each seed, one N(0, 1) input each):

* ``weighted``: :func:`edgewise.weighted_pathways` (one forward pass carrying the squared factors in float64
  beside the activations, one backward pass, per initialisation);
* ``sensitivity``: :func:`edgewise.sensitivity.init_sensitivity`, the measured map the weighted one predicts
  (what ``edgewise sensitivity`` and the report run beside it);
* ``against`` (with ``--against CHECKOUT``): another checkout's ``weighted_pathways``, loaded beside this one
  (``cold_ab.load_against``); its maps must agree with ``weighted``'s to rtol 1e-6 (sums in another order, and
  large weights' mean squares from float32 row norms), or the script exits 1;
* ``draws``: the weights of the N initialisations alone (:func:`edgewise._init.apply`), which both of them draw;
* ``gradient``: one plain float32 forward pass and input-gradient backward pass of the model (weights frozen),
  per initialisation: the unit the weighted map's own work is counted in, ``(weighted - draws) / gradient``.

The repeats alternate (weighted, sensitivity, draws, gradient, ...), one torch thread, medians. The log
correlation of the two maps and their centre/corner ratios are printed beside the times (what the README's
weighted-paths table reports), so a faster engine that changed the map would show.

Run::

    .venv/bin/python benchmarks/weighted.py [--models resnet18:64,efficientnet_b0:128,convnext_tiny:128,swin_t:64]
        [--inits 8] [--repeats 3] [--against CHECKOUT] [--json benchmarks/results/weighted.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from _timing import machine_line  # benchmarks/ is on sys.path when a script here runs
from cold_ab import load_against
from edgewise import _init, models, weighted_pathways
from edgewise.errors import EdgewiseWarning
from edgewise.maps import log_correlation
from edgewise.sensitivity import _init_seeds, init_sensitivity

MODELS = "resnet18:64,efficientnet_b0:128,convnext_tiny:128,swin_t:64"


def bench(name: str, size: int, n_inits: int, repeats: int, against=None) -> dict:
    net, shape = models.load(f"torchvision:{name}"), (3, size, size)
    template = models.load(f"torchvision:{name}").eval().requires_grad_(False)
    plan, seeds = _init.plan(template), _init_seeds(0, n_inits)
    x = torch.randn(1, *shape)

    def draws():
        for s in seeds:
            _init.apply(template, plan, s)

    def gradient():
        for _ in seeds:
            xi = x.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(template(xi).sum(), xi)
        return g

    runs = {"weighted": lambda: weighted_pathways(net, shape, n_inits=n_inits),
            **({"against": lambda: against.weighted_pathways(net, shape, n_inits=n_inits)} if against else {}),
            "sensitivity": lambda: init_sensitivity(net, shape, n_inits=n_inits), "draws": draws,
            "gradient": gradient}
    times, out = {k: [] for k in runs}, {}
    for k, fn in runs.items():  # warm-up: the builder's recorded replay, the trace, the allocator
        out[k] = fn()
    for _ in range(repeats):
        for k, fn in runs.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    w, s = out["weighted"], out["sensitivity"]
    return {"model": f"torchvision:{name}", "input": list(shape), "n_inits": n_inits, "seconds": med,
            "all_seconds": times, "weighted_over_sensitivity": med["weighted"] / med["sensitivity"],
            **({"against_over_this": med["against"] / med["weighted"],
                "agree": bool(np.allclose(out["against"].samples, w.samples, rtol=1e-6, atol=0))} if against else {}),
            "gradient_passes": (med["weighted"] - med["draws"]) / med["gradient"],  # (both: N initialisations)
            "log_correlation": log_correlation(s.map, w.map),
            "center_corner_ratio": {"weighted": w.summary["center_corner_ratio"],
                                    "measured": s.summary["center_corner_ratio"]}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=MODELS, help="comma-separated torchvision NAME:SIZE")
    ap.add_argument("--inits", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--against", metavar="CHECKOUT", type=Path, help="another checkout to time beside this one")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", EdgewiseWarning)
    print(machine_line())
    against = args.against and load_against(args.against.resolve())
    results = []
    for item in args.models.split(","):
        name, _, size = item.partition(":")
        r = bench(name, int(size), args.inits, args.repeats, against)
        results.append(r)
        sec, cc = r["seconds"], r["center_corner_ratio"]
        print(f"{name} 3x{size}x{size}, {args.inits} initialisations: weighted {sec['weighted']:.2f} s, sensitivity "
              f"{sec['sensitivity']:.2f} s ({r['weighted_over_sensitivity']:.2f}x its time), "
              + (f"{args.against}: {sec['against']:.2f} s ({r['against_over_this']:.2f}x; maps agree: {r['agree']}), "
                 if against else "") + f"draws "
              f"{sec['draws']:.2f} s, one gradient pass {1e3 * sec['gradient'] / args.inits:.1f} ms: the weighted "
              f"map's own work = {r['gradient_passes']:.2f} gradient passes an initialisation; "
              f"centre/corner {cc['weighted']:.3g}x weighted, {cc['measured']:.3g}x measured, "
              f"r = {r['log_correlation']:.2f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine_line(), "against": args.against and str(args.against.resolve()),
                       "results": results}, f, indent=1)
    return 0 if all(r.get("agree", True) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
