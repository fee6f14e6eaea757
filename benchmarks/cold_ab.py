"""Cold path maps of this checkout against another, both loaded in one process and timed call by call.

    .venv/bin/python benchmarks/cold_ab.py --against /tmp/before                      # DenseNet-121, 60 pairs
    .venv/bin/python benchmarks/cold_ab.py --against /tmp/before --models resnet50 densenet121 --part trace

A change of a few per cent is lost between two benchmark runs on a busy machine: the same run of
``pathways.py`` gave DenseNet-121 28.6× and 54.6× within ten minutes. Here the other checkout's package is
imported beside this one (as ``edgewise_against``), and each repeat times one cold call of each, in alternating
order, on freshly copied models with both packages' caches cleared: the two see the same machine, a few
milliseconds apart. Printed per model and part: the smallest, lower-quartile and median CPU time (this thread's)
of each, and their ratio (against ÷ this: above 1 when this checkout is faster).

Parts: ``all`` (``pathways(model, shape, to="all")``: trace and counting), ``trace`` and ``count`` (counting on a
Graph each package traced before the clock). Make the other checkout with ``git worktree add /tmp/before REV``.
"""

from __future__ import annotations

import argparse
import copy
import gc
import importlib.util
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

from _timing import machine_line  # benchmarks/ is on sys.path when a script here runs

HERE = Path(__file__).resolve().parent.parent  # the checkout this script belongs to
PARTS = ("all", "trace", "count")


def load_against(checkout: Path):
    """The edgewise package of ``checkout``, imported as ``edgewise_against`` (its imports are relative)."""
    init = checkout / "edgewise" / "__init__.py"
    if not init.is_file():
        raise SystemExit(f"{checkout} has no edgewise package (expected {init})")
    spec = importlib.util.spec_from_file_location("edgewise_against", init,
                                                  submodule_search_locations=[str(init.parent)])
    pkg = importlib.util.module_from_spec(spec)
    sys.modules["edgewise_against"] = pkg
    spec.loader.exec_module(pkg)
    return pkg


def _call(pkg, part: str, model, graph, shape):
    if part == "all":
        return pkg.pathways(model, shape, to="all")
    if part == "trace":
        return pkg.trace(model, shape)
    return pkg.pathways(graph, to="all")


def compare(packages: dict, name: str, shape: tuple, part: str, repeats: int) -> dict:
    """CPU seconds of ``repeats`` cold calls of each package on model ``name``, interleaved call by call."""
    import torchvision

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = torchvision.models.get_model(name, weights=None)
    clear = {k: importlib.import_module(pkg.__name__ + ".pathways").clear_caches for k, pkg in packages.items()}
    graphs = {k: pkg.trace(copy.deepcopy(net), shape) for k, pkg in packages.items()}
    for k, pkg in packages.items():  # (torch's lazy initialisation, untimed)
        _call(pkg, part, copy.deepcopy(net), graphs[k], shape)
    times = {k: [] for k in packages}
    for r in range(repeats):
        for k in (list(packages) if r % 2 == 0 else list(reversed(packages))):
            fresh = [copy.deepcopy(net) for _ in range(2)][0]  # (a second copy evicts the first from the caches,
            clear[k]()                                          # as a model built just before a first call is)
            gc.collect()
            t = time.thread_time()
            _call(packages[k], part, fresh, graphs[k], shape)
            times[k].append(time.thread_time() - t)
    row = {"model": name, "part": part, "input": "x".join(map(str, shape)), "repeats": repeats}
    for k, v in times.items():
        v = sorted(v)
        row[k] = {"min_s": v[0], "q25_s": v[len(v) // 4], "median_s": statistics.median(v), "times_s": times[k]}
    row["ratio_median"] = row["against"]["median_s"] / row["this"]["median_s"]
    row["ratio_min"] = row["against"]["min_s"] / row["this"]["min_s"]
    return row


def torchvision_models() -> list[str]:
    """The names ``torchvision.models.get_model`` builds (classification models)."""
    import torchvision

    return torchvision.models.list_models(module=torchvision.models)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--against", metavar="CHECKOUT", type=Path, required=True,
                    help="the checkout to compare with (a directory holding its edgewise package)")
    ap.add_argument("--models", nargs="+", default=["densenet121"], help="torchvision model names")
    ap.add_argument("--part", choices=PARTS, nargs="+", default=["all"], help="what to time (default: all)")
    ap.add_argument("--size", type=int, default=224, help="input height = width (3 channels)")
    ap.add_argument("--repeats", type=int, default=60, help="cold calls of each checkout per model and part")
    ap.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    known = set(torchvision_models())
    for name in args.models:
        if name not in known:
            import difflib

            close = difflib.get_close_matches(name, sorted(known), n=3)
            ap.error(f"unknown torchvision model {name!r}" + (f"; did you mean {', '.join(close)}?" if close else ""))
    torch.set_num_threads(1)
    sys.path.insert(0, str(HERE))
    import edgewise

    packages = {"this": edgewise, "against": load_against(args.against.resolve())}
    machine = machine_line()  # (the load at the start, also in the JSON)
    print(machine)
    print(f"this: {Path(edgewise.__file__).parent.parent}; against: {args.against.resolve()}")
    shape = (3, args.size, args.size)
    rows = []
    print(f"\n{'model':<14}{'part':<7}" + "".join(f"{k + ' ' + s:>16}" for k in packages
                                             for s in ("min", "q25", "median")) + f"{'ratio':>8}")
    for name in args.models:
        for part in args.part:
            row = compare(packages, name, shape, part, args.repeats)
            rows.append(row)
            print(f"{name:<14}{part:<7}" + "".join(f"{row[k][s + '_s'] * 1e3:>14.2f}ms" for k in packages
                                                   for s in ("min", "q25", "median")) + f"{row['ratio_median']:>7.3f}x")
    print("\nCPU times of cold calls (caches cleared), interleaved; ratio = against's median ÷ this one's "
          "(above 1: this checkout is faster).")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "against": str(args.against.resolve()),
                                               "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
