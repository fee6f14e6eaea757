"""One remedy's Monte-Carlo sensitivity in this checkout against another, both loaded in one process, interleaved.

    .venv/bin/python benchmarks/remedy_ab.py --against /tmp/before                       # global, ResNet-50, 4 inits
    .venv/bin/python benchmarks/remedy_ab.py --against /tmp/before --remedy coordconv --model torchvision:resnet18
    .venv/bin/python benchmarks/remedy_ab.py --against /tmp/before --compare circular,reflect,replicate --inits 8

What the report spends on a remedy (``edgewise.remedies.compare`` with ``n_inits``): the model rewritten by the
remedy, then :func:`edgewise.sensitivity.init_sensitivity` over ``--inits`` random initialisations. Each package
rewrites its own copy of the model; each repeat times one measurement of each (CPU time of this thread), in
alternating order, and checks that the two maps agree (the same seeds: the same weights and inputs). Printed: the
smallest and median time of each and the ratio of medians (against ÷ this: above 1 when this checkout is faster).
With ``--compare R1,R2,…`` it times the whole comparison instead (``compare(model, shape, [R1, R2, …],
n_inits=N)``: the original and each remedy, as the report's remedies section measures them), and checks every
variant's map. Make the other checkout with ``git worktree add /tmp/before REV``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from _timing import machine_line  # benchmarks/ is on sys.path when a script here runs
from cold_ab import HERE, load_against


def measure(pkg, model, shape, n_inits: int):
    """(CPU seconds, the sensitivity map) of one ``init_sensitivity`` of the remedied ``model``."""
    sensitivity = importlib.import_module(pkg.__name__ + ".sensitivity")
    with warnings.catch_warnings():  # (the remedy's new tensors get their layers' default initialisation)
        warnings.simplefilter("ignore")
        t = time.thread_time()
        result = sensitivity.init_sensitivity(model, shape, n_inits=n_inits, seed=0, in_place=True)
        return time.thread_time() - t, result.map


def measure_compare(pkg, model, shape, n_inits: int, chosen: list[str]):
    """(CPU seconds, the variants' sensitivity maps stacked) of one ``compare`` of ``model``."""
    remedies = importlib.import_module(pkg.__name__ + ".remedies")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.thread_time()
        result = remedies.compare(model, shape, chosen, n_inits=n_inits, progress=False)
        return time.thread_time() - t, np.stack([result.sensitivity[k] for k in sorted(result.sensitivity)])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--against", metavar="CHECKOUT", type=Path, required=True,
                    help="the checkout to compare with (a directory holding its edgewise package)")
    ap.add_argument("--remedy", default="global", help="a remedy name (edgewise.remedies.names())")
    ap.add_argument("--model", default="torchvision:resnet50", help="a model reference (default torchvision:resnet50)")
    ap.add_argument("--input", default="3x224x224", help="input shape CxL or CxHxW")
    ap.add_argument("--inits", type=int, default=4, help="initialisations per measurement (at least 2)")
    ap.add_argument("--repeats", type=int, default=3, help="measurements of each checkout")
    ap.add_argument("--compare", metavar="R1,R2", help="time compare() of the original and these remedies instead")
    ap.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.inits < 2:
        ap.error("--repeats must be at least 1 and --inits at least 2")
    torch.set_num_threads(1)
    sys.path.insert(0, str(HERE))
    import edgewise
    from edgewise import remedies
    from edgewise._trace import parse_shape

    chosen = args.compare.split(",") if args.compare else [args.remedy]
    unknown = [r for r in chosen if r not in remedies.names()]
    if unknown:
        ap.error(f"unknown remedy {unknown[0]!r}; choose from {', '.join(remedies.names())}")
    packages = {"this": edgewise, "against": load_against(args.against.resolve())}
    try:  # (a bad shape, model or a remedy that does not fit it: the error's own sentence, no traceback)
        shape = parse_shape(args.input)
        models = {k: importlib.import_module(pkg.__name__ + ".models").load(args.model, shape)
                  for k, pkg in packages.items()}
        if not args.compare:
            models = {k: importlib.import_module(packages[k].__name__ + ".remedies").apply(m, args.remedy,
                                                                                         input_shape=shape)
                      for k, m in models.items()}
    except (edgewise.EdgewiseError, packages["against"].EdgewiseError) as e:
        ap.error(str(e).splitlines()[0])
    machine = machine_line()  # (the load at the start, also in the JSON)
    print(machine)
    what = f"compare(original, {', '.join(chosen)})" if args.compare else args.remedy
    print(f"this: {HERE}; against: {args.against.resolve()}\n{what} on {args.model} {args.input}, "
          f"{args.inits} initialisations per measurement")
    times = {k: [] for k in packages}
    for r in range(args.repeats):
        maps = {}
        for k in (list(packages) if r % 2 == 0 else list(reversed(packages))):
            seconds, maps[k] = (measure_compare(packages[k], models[k], shape, args.inits, chosen) if args.compare
                                else measure(packages[k], models[k], shape, args.inits))
            times[k].append(seconds)
        scale = float(np.abs(maps["this"]).max())
        if not np.allclose(maps["this"], maps["against"], rtol=1e-3, atol=1e-6 * scale):
            print("the two checkouts' maps differ", file=sys.stderr)
            return 1
    row = {k: {"min_s": min(v), "median_s": statistics.median(v), "times_s": v} for k, v in times.items()}
    row["ratio_median"] = row["against"]["median_s"] / row["this"]["median_s"]
    for k in packages:
        print(f"{k:<8} min {row[k]['min_s']:.2f} s, median {row[k]['median_s']:.2f} s")
    print(f"ratio of medians (against ÷ this): {row['ratio_median']:.2f}x; the maps agree (rtol 1e-3)")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "checkout": str(HERE),
                                               "against_checkout": str(args.against.resolve()),
                                               "remedy": what, "model": args.model, "input": args.input,
                                               "inits": args.inits, **row}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
