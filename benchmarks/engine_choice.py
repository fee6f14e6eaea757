"""Benchmark: how well :func:`edgewise.sensitivity.engine` picks the Monte-Carlo engine (loop or vmap).

For each spec net it times ``init_sensitivity`` with the loop (``chunk=1``) and with vmap (the chunk the engine
would use for vmap: its automatic one, 8 where it would loop), repeats interleaved, medians, and reports for the
engine's choice and for the FLOPs-alone rule (loop from :data:`~edgewise.sensitivity.LOOP_FLOPS`, the rule before
the activations were added) the time as a multiple of the faster engine's: 1.00 is the right choice.

Three sets: ``fit`` (37 nets: 1-D and 2-D, 4 to 32 channels, 32² to 256²), ``held-out`` (12 other nets) and
``check`` (10 more, defined before they were first measured). A first rule (loop from 2.5 MB of activations at
10 FLOPs a byte or more) was chosen on ``fit`` and checked on ``held-out``; refined with the channels per group it
fitted both better and did worse on ``check``; the rule kept, :data:`~edgewise.sensitivity.LOOP_ACTIVATIONS`
alone, is the one of those tried whose worst case was the best on all three. Times are per initialisation (16 of
them); only the ratios carry over to another machine.

Run::

    .venv/bin/python benchmarks/engine_choice.py [--sets fit,held-out,check] [--repeats 3] [--threads 1]
        [--json benchmarks/results/engine_choice.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings

import torch

from _timing import machine_line  # benchmarks/ is on sys.path when a script here runs
from sensitivity import Baseline
from edgewise import limits, nets
from edgewise import sensitivity as S

N_INITS = 16
_D = nets.DEFAULT_SPEC
SETS = {
    "fit": [(f"{depth}*conv3", (1, n, n), w) for depth in (4, 8) for w in (4, 8, 16, 32) for n in (32, 64, 128)]
    + [(_D, (c, n, n), w) for n in (64, 128, 256) for c, w in ((1, 8), (3, 16))]
    + [("8*conv3", (1, n), w) for n in (1024, 4096, 16384) for w in (8, 32)]
    + [(nets.QUESTION_SPEC, (1, 256), 8)],
    "held-out": [("6*conv3", (1, 96, 96), 8), ("4*conv3", (1, 128, 128), 12), (_D, (1, 160, 160), 8),
                 ("4*conv3", (1, 32768), 16), ("8*conv3", (1, 96, 96), 6), ("3*conv3", (1, 192, 192), 8),
                 ("conv5, maxpool2, 3*conv3", (1, 128, 128), 12), ("5*conv3", (2, 112, 112), 6),
                 ("4*conv3", (1, 96, 96), 16), ("6*conv3", (1, 128, 128), 5),
                 ("2*conv3, maxpool2, 2*conv3", (3, 96, 96), 12), ("4*conv5", (1, 8192), 8)],
    "check": [("5*conv3", (1, 112, 112), 8), ("3*conv3", (1, 160, 160), 6), ("6*conv3", (1, 80, 80), 12),
              (_D, (1, 192, 192), 8), ("4*conv3", (1, 144, 144), 4), ("2*conv5, maxpool2, 2*conv3", (1, 128, 128), 8),
              ("6*conv3", (1, 20000), 12), ("4*conv3", (2, 96, 96), 10), ("8*conv3", (1, 80, 80), 8),
              ("conv3, maxpool2, 4*conv3", (3, 160, 160), 8)],
}


def flops_only(flops: float) -> str:
    """The engine rule before activations were considered."""
    return "loop" if flops >= S.LOOP_FLOPS else "vmap"


def measure(spec: str, shape: tuple, width: int, repeats: int) -> dict:
    net = nets.from_spec(spec, shape, width=width)
    acts, flops = limits.forward_cost(net, shape)
    chosen = S.engine(flops, acts)
    vmap_chunk = None if chosen == "vmap" else 8  # (None: the automatic chunk)
    user = Baseline(net, shape, "loop")
    times = {"loop": [], "vmap": [], "user loop": []}
    for r in range(repeats):
        for name in (("loop", "vmap", "user loop") if r % 2 else ("user loop", "vmap", "loop")):
            t = time.perf_counter()
            if name == "user loop":
                user(range(N_INITS))
            else:
                S.init_sensitivity(net, shape, n_inits=N_INITS, chunk=1 if name == "loop" else vmap_chunk)
            times[name].append((time.perf_counter() - t) / N_INITS)
    med = {k: statistics.median(v) for k, v in times.items()}
    best = min(med["loop"], med["vmap"])
    before = flops_only(flops)
    return {"spec": spec, "shape": list(shape), "width": width, "activation_bytes": acts, "flops": flops,
            "seconds_per_init": med, "all_seconds_per_init": times, "engine": chosen, "flops_only": before,
            "engine_vs_best": med[chosen] / best, "flops_only_vs_best": med[before] / best,
            "user_loop_vs_engine": med["user loop"] / med[chosen], "user_loop_vs_flops_only": med["user loop"] / med[before]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="fit,held-out,check")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    names = args.sets.split(",")
    unknown = [n for n in names if n not in SETS]
    if unknown:
        ap.error(f"unknown set(s) {', '.join(unknown)}; choose from {', '.join(SETS)}")
    print(machine_line())
    print(f"engine: loop from {S.LOOP_FLOPS / 1e6:.0f} MFLOP or from {S.LOOP_ACTIVATIONS / 2**20:g} MiB of "
          "activations; else vmap")
    out = {"threads": args.threads, "n_inits": N_INITS, "loop_flops": S.LOOP_FLOPS,
           "loop_activations": S.LOOP_ACTIVATIONS, "sets": {}}
    for name in names:
        print(f"\n{name}: ms per initialisation; chosen engine's time / the faster one's")
        rows = []
        for spec, shape, width in SETS[name]:
            r = measure(spec, shape, width, args.repeats)
            rows.append(r)
            sec = r["seconds_per_init"]
            print(f"  {spec[:34]:34s} {'x'.join(map(str, shape)):>11s} w{width:<3d} "
                  f"{r['activation_bytes'] / 1e6:6.2f} MB {r['flops'] / 1e6:7.1f} MFLOP  loop {sec['loop'] * 1e3:6.2f} "
                  f"vmap {sec['vmap'] * 1e3:6.2f}  engine {r['engine']:4s} {r['engine_vs_best']:4.2f}  "
                  f"FLOPs alone {r['flops_only']:4s} {r['flops_only_vs_best']:4.2f}  user loop {sec['user loop'] * 1e3:6.2f} "
                  f"= {r['user_loop_vs_engine']:4.2f}x the engine's", flush=True)
        summary = {k: {"mean": statistics.mean(r[f"{k}_vs_best"] for r in rows),
                       "worst": max(r[f"{k}_vs_best"] for r in rows),
                       "user_loop_min": min(r[f"user_loop_vs_{k}"] for r in rows)} for k in ("engine", "flops_only")}
        print(f"  mean (worst): engine {summary['engine']['mean']:.3f} ({summary['engine']['worst']:.2f}), "
              f"FLOPs alone {summary['flops_only']['mean']:.3f} ({summary['flops_only']['worst']:.2f}); the user's "
              f"plain loop at least {summary['engine']['user_loop_min']:.2f}x the engine's time (FLOPs alone: "
              f"{summary['flops_only']['user_loop_min']:.2f}x)")
        out["sets"][name] = {"rows": rows, "summary": summary}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
