"""Benchmark: Monte-Carlo sensitivity of timm's ResNets with their silent branches run as zeros, against every layer
running (the code before), in the same run.

timm's ResNets start the last BatchNorm of every residual branch at weight 0 (``zero_init_last``), so at
initialisation each branch's convolutions only feed a zero (see ``edgewise/_silence.py``). ``silenced`` is
:func:`edgewise.sensitivity.init_sensitivity` as it runs; ``every layer`` the same call with no layer silenced.
The repeats alternate (silenced, every layer, …), one torch thread, medians; the maps must be equal bit for bit
(the script exits 1 if they are not). The builder's weights are drawn in both: what silencing leaves is the draws
and the stem, shortcuts and gates.

Run::

    .venv/bin/python benchmarks/silence.py [--models timm:resnet50:224,timm:seresnet18:64] [--inits 8]
        [--repeats 5] [--json benchmarks/results/silence.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
import torch

from _timing import machine_line  # benchmarks/ is on sys.path when a script here runs
from edgewise import _init, _silence, models, trace
from edgewise import sensitivity as S


def bench(ref: str, size: int, n_inits: int, repeats: int) -> dict:
    net, shape = models.load(ref), (3, size, size)
    zero = _init.zero_scales(_init.plan(net), net)
    silent = _silence.silent_layers(trace(net, shape), net, zero)
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in net.modules())
    real = S.silent_layers
    runs = {"silenced": real, "every layer": lambda *a, **k: {}}
    times, maps = {k: [] for k in runs}, {}
    for k, fn in runs.items():  # warm-up (the builder's recorded replay, the trace)
        S.silent_layers = fn
        S.init_sensitivity(net, shape, n_inits=2, seed=0)
    try:
        for _ in range(repeats):
            for k, fn in runs.items():
                S.silent_layers = fn
                t = time.perf_counter()
                maps[k] = S.init_sensitivity(net, shape, n_inits=n_inits, seed=0).samples
                times[k].append(time.perf_counter() - t)
    finally:
        S.silent_layers = real
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"model": ref, "input": list(shape), "n_inits": n_inits, "zero_norms": len(zero),
            "silent_layers": len(silent), "convolutions": convs, "seconds": med, "all_seconds": times,
            "ratio": med["every layer"] / med["silenced"],
            "equal": bool(np.array_equal(maps["silenced"], maps["every layer"]))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="timm:resnet50:224,timm:seresnet18:64",
                    help="comma-separated timm:NAME:SIZE")
    ap.add_argument("--inits", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(machine_line())
    results = []
    for item in args.models.split(","):
        ref, _, size = item.rpartition(":")
        r = bench(ref, int(size), args.inits, args.repeats)
        results.append(r)
        print(f"{ref} 3x{size}x{size}, {args.inits} initialisations: {r['silent_layers']} of {r['convolutions']} "
              f"convolutions silent ({r['zero_norms']} norms start at 0); silenced {r['seconds']['silenced']:.2f} s, "
              f"every layer {r['seconds']['every layer']:.2f} s: {r['ratio']:.2f}x; maps equal bit for bit: "
              f"{r['equal']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine_line(), "results": results}, f, indent=1)
    return 0 if all(r["equal"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
