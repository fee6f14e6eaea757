"""Benchmark: ``edgewise.pathways`` against autograd on the full-width all-ones network.

For each model (default: torchvision ResNet-50 and ResNet-152 at 3×224×224,
random architecture only: nothing is downloaded) it times, in the same run:

* ``edgewise.pathways(model, shape, to="all")`` end to end (tracing included),
  and its two parts: ``edgewise.trace`` and counting on the traced Graph;
* the same with ``exact=True`` (Python integers);
* the baseline :func:`edgewise.testing.oracle.autograd_pathways`: a deep copy
  with every weight one, a forward and a backward pass in float64 at full width.

Every timing is the median of a few repeats after one warm-up call (which
pays for torch's lazy initialisation and edgewise's matrix caches; its time is
printed too). It checks that float mode and the baseline agree to a relative
1e-9 wherever the baseline is finite (the baseline is seeded with
``2**-scale_log2`` so that ResNet-152's ~1e433 paths fit in float64), and
exits 1 if they do not, 0 otherwise.

Run::

    .venv/bin/python benchmarks/pathways.py [--repeats 5] [--baseline-repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np
import torch

import edgewise
from edgewise.testing.oracle import autograd_pathways

RTOL = 1e-9
GOAL_RATIO = 20.0


def timed(fn, repeats: int):
    """(median seconds, all times, last result) over ``repeats`` calls."""
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times, out


def agreement(result: edgewise.PathCounts, baseline: np.ndarray, scale_log2: int) -> tuple[float, int]:
    """(largest relative difference where the baseline is finite and positive, positions compared)."""
    finite = np.isfinite(baseline)
    if not np.array_equal(baseline[finite] == 0, ~np.isfinite(result.log10[finite])):
        return math.inf, int(finite.sum())
    ok = finite & (baseline > 0)
    if not ok.any():
        return 0.0, 0
    log_ref = np.log10(baseline[ok]) + scale_log2 * math.log10(2)
    diff = np.abs(log_ref - result.log10[ok]) * math.log(10)  # |ln a − ln b| ≈ relative difference
    return float(np.expm1(diff.max())), int(ok.sum())


def bench(name: str, shape, repeats: int, baseline_repeats: int) -> dict:
    import torchvision

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = torchvision.models.get_model(name, weights=None)

    t = time.perf_counter()
    first = edgewise.pathways(net, shape, to="all")  # warm-up
    cold = time.perf_counter() - t
    # seed the baseline's backward pass with 2**-s so that its largest count stays near 1e250
    top = float(np.max(first.log10))
    scale_log2 = max(0, math.ceil((top - 250) / math.log10(2)))
    if scale_log2 > 1000:
        raise SystemExit(f"{name}: counts reach 1e{top:.0f}, beyond what the float64 baseline can be scaled to")
    t = time.perf_counter()
    autograd_pathways(net, shape, scale_log2=scale_log2)  # warm-up
    baseline_cold = time.perf_counter() - t

    fresh = [copy.deepcopy(net) for _ in range(repeats)]  # new objects: no cached trace
    t_end, times_end, result = timed(lambda: edgewise.pathways(fresh.pop(), shape, to="all"), repeats)
    t_warm, _, _ = timed(lambda: edgewise.pathways(net, shape, to="all"), repeats)  # trace cached
    fresh = [copy.deepcopy(net) for _ in range(repeats)]
    t_trace, _, _ = timed(lambda: edgewise.trace(fresh.pop(), shape), repeats)
    graph = edgewise.trace(net, shape)
    t_count, _, _ = timed(lambda: edgewise.pathways(graph, to="all"), repeats)
    t_exact, _, exact = timed(lambda: edgewise.pathways(graph, to="all", exact=True), max(1, repeats // 2))
    t_base, times_base, baseline = timed(lambda: autograd_pathways(net, shape, scale_log2=scale_log2),
                                         baseline_repeats)

    rel, compared = agreement(result, baseline, scale_log2)
    exact_log10 = np.array([math.log10(v) if v > 0 else -math.inf for v in exact.counts.ravel()])
    rel_exact = float(np.expm1(np.max(np.abs(exact_log10 - result.log10.ravel())) * math.log(10)))
    return {
        "model": name, "input": "x".join(map(str, shape)), "nodes": len(graph),
        "edgewise_s": t_end, "edgewise_times_s": times_end, "edgewise_cold_s": cold,
        "trace_s": t_trace, "count_s": t_count, "exact_s": t_exact,
        "baseline_s": t_base, "baseline_times_s": times_base, "baseline_cold_s": baseline_cold,
        "ratio": t_base / t_end, "ratio_count_only": t_base / t_count, "warm_s": t_warm,
        "ratio_warm": t_base / t_warm,
        "log10_max": top, "log10_min": float(np.min(result.log10)), "baseline_scale_log2": scale_log2,
        "max_rel_diff_vs_baseline": rel, "positions_compared": compared, "max_rel_diff_vs_exact": rel_exact,
        "agree": rel <= RTOL and rel_exact <= RTOL,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["resnet50", "resnet152"])
    parser.add_argument("--size", type=int, default=224, help="input height = width (3 channels)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of edgewise (median)")
    parser.add_argument("--baseline-repeats", type=int, default=3, help="timed repeats of the baseline (median)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    shape = (3, args.size, args.size)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"edgewise {edgewise.__version__}, torch {torch.__version__}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, {platform.machine()}, "
          f"load average {load:.2f} at start")
    rows = [bench(name, shape, args.repeats, args.baseline_repeats) for name in args.models]

    head = (f"{'model':<11} {'input':<10} {'edgewise':>9} {'= trace':>9} {'+ count':>9} {'warm':>9} {'exact':>9} "
            f"{'baseline':>9} {'ratio':>7} {'warm':>7} {'ratio*':>7} {'rel.diff':>9}")
    print("\n" + head + "\n" + "-" * len(head))
    for r in rows:
        print(f"{r['model']:<11} {r['input']:<10} {r['edgewise_s'] * 1e3:>7.1f}ms {r['trace_s'] * 1e3:>7.1f}ms "
              f"{r['count_s'] * 1e3:>7.1f}ms {r['warm_s'] * 1e3:>7.1f}ms {r['exact_s'] * 1e3:>7.1f}ms "
              f"{r['baseline_s'] * 1e3:>7.0f}ms {r['ratio']:>6.1f}x {r['ratio_warm']:>6.1f}x "
              f"{r['ratio_count_only']:>6.0f}x {r['max_rel_diff_vs_baseline']:>9.1e}")
    print("\nedgewise = edgewise.pathways(model, shape, to='all') end to end on a new model object (torch.fx trace\n"
          "+ count), median; warm = the same call again on the same model (its trace is reused);\n"
          "baseline = autograd_pathways (float64 forward + backward of the all-ones network), median;\n"
          "ratio = baseline / edgewise; warm = baseline / warm; ratio* = baseline / count only on a Graph;\n"
          "rel.diff = largest relative difference between edgewise's float counts and the baseline.")
    for r in rows:
        print(f"{r['model']}: counts 1e{r['log10_min']:.1f} .. 1e{r['log10_max']:.1f} over {r['positions_compared']} "
              f"positions; float vs exact {r['max_rel_diff_vs_exact']:.1e}; first call {r['edgewise_cold_s']:.2f} s "
              f"(baseline {r['baseline_cold_s']:.2f} s); baseline seeded with 2**-{r['baseline_scale_log2']}")
    for r in rows:
        for label, ratio in (("first call (trace + count)", r["ratio"]), ("repeated call", r["ratio_warm"])):
            verdict = "met" if ratio >= GOAL_RATIO else "NOT met"
            print(f"goal ≥ {GOAL_RATIO:.0f}x on {r['model']}, {label}: {verdict} ({ratio:.1f}x)")
    r50 = next((r for r in rows if r["model"] == "resnet50"), None)
    if r50 is not None:
        print(f"goal well under 1 s on resnet50: {'met' if r50['edgewise_s'] < 0.5 else 'NOT met'} "
              f"({r50['edgewise_s'] * 1e3:.0f} ms)")
    print(f"load average {os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan'):.2f} at end "
          "(timings on a busy machine are noisy; the ratio is taken within one run)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    bad = [r["model"] for r in rows if not r["agree"]]
    if bad:
        print(f"DISAGREEMENT beyond relative {RTOL}: {', '.join(bad)}", file=sys.stderr)
        return 1
    print(f"edgewise and the baseline agree within relative {RTOL} on every model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
