"""How long `edgewise report` takes, part by part, against its budgets and against `edgewise answer`.

    .venv/bin/python benchmarks/report.py                 # default report, then --train --visualize (quick)
    .venv/bin/python benchmarks/report.py --no-train --json benchmarks/results/report.json
    .venv/bin/python benchmarks/report.py --fresh-only --fresh 5     # only `edgewise report` in fresh processes
    .venv/bin/python benchmarks/report.py --fresh-only --fresh 5 --against ../main   # and another checkout's
    .venv/bin/python benchmarks/report.py --fresh-only --against ../main --report "timm:convnext_atto -i 3x64x64"

The budgets: the default report (issue 17) within 15 s on this 2-core machine, timed first as a user meets it
(`edgewise report` in a fresh process, ``--fresh N`` times, the median: interpreter start, imports and torch's
lazy start-up included; with the CPU seconds of its processes, the page's and its figure worker's, which a busy
machine inflates less than the wall time) and then as ``build()`` in this process at one torch thread, each in
a fresh folder (section 8 not computed, see ``build(probe=...)``); with --train --visualize (quick sizes,
experiments not cached) within 15 minutes (issue 7). ``--probe`` adds the default page with section 8
computed (the packaged EfficientNet-Lite0 probed: a cold probe cache) and again from its warm cache. The
baseline in the same run is `edgewise.answer` on the same two models: the report's sections 1–6 reuse its engine
results, so the ratio says what the report adds on top.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from edgewise.answer import answer
from edgewise.report.builder import DEFAULT_MODELS, build

from _timing import load_average, machine_line  # benchmarks/ is on sys.path when a script here runs

BUDGETS = {"default": 15.0, "default --probe (cold)": None, "default (probes cached)": None,
           "train+visualize": 900.0}


def _timed(fn):
    t = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t


HERE = Path(__file__).resolve().parent.parent  # the checkout this script belongs to


def _fresh(out: Path, code: Path = HERE, extra: tuple = ()) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds of the report's processes, load average before) of `edgewise report --out
    out` (and ``extra`` arguments) in a fresh process, its own default threads, with the edgewise package of the
    checkout ``code``."""
    cli = Path(sys.executable).with_name("edgewise")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), *filter(None, [os.environ.get("PYTHONPATH")])])}
    load, before = os.getloadavg()[0], resource.getrusage(resource.RUSAGE_CHILDREN)
    _, wall = _timed(lambda: subprocess.run([str(cli), "report", *extra, "--out", str(out), "--no-progress"], check=True,
                                            capture_output=True, env=env))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, load


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-train", action="store_true", help="time the default report only")
    ap.add_argument("--probe", action="store_true", help="also the default page with section 8, cold and cached")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--fresh", type=int, default=3, metavar="N", help="fresh-process runs of `edgewise report` "
                    "(default 3; the median is reported)")
    ap.add_argument("--fresh-only", action="store_true", help="only the fresh-process runs")
    ap.add_argument("--against", metavar="CHECKOUT", type=Path, action="append", default=[],
                    help="also run the fresh process with another checkout's edgewise (e.g. the main branch), "
                         "interleaved with this one's (A B A B ...); may be repeated")
    ap.add_argument("--report", metavar="ARGS", default="",
                    help="the fresh runs' arguments for `edgewise report`, e.g. 'timm:convnext_atto -i 3x64x64' "
                         "(default: none, the default page; the 15 s budget is the default page's)")
    ap.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    args = ap.parse_args(argv)
    extra = tuple(shlex.split(args.report))
    torch.set_num_threads(args.threads)
    print(f"{machine_line()}, python {platform.python_version()}")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        # first, as a user meets it: `edgewise report` in a fresh process (imports and torch's lazy start-up
        # included), its own default threads; the in-process runs below come after, so they are warm
        checkouts = {"edgewise report (fresh process)": HERE}
        for other in args.against:
            checkouts[f"edgewise report (fresh process, {other})"] = other.resolve()
        fresh = {name: [] for name in checkouts}
        for i in range(args.fresh):
            for j, (name, code) in enumerate(checkouts.items()):
                wall, cpu, load = _fresh(Path(tmp) / f"cli{i}-{j}", code, extra)
                fresh[name].append((wall, cpu, load))
                print(f"fresh process {i + 1}/{args.fresh} ({code}): {wall:5.1f} s, {cpu:5.1f} CPU s "
                      f"(page + figure worker), load average {load:.2f} before")
        for name, runs in fresh.items():
            rows[name] = {
                "seconds": round(statistics.median(w for w, _, _ in runs), 1), "budget": None if extra else 15.0,
                "vs_answer": None, "arguments": list(extra),
                "probe": False, "parts": {}, "checkout": str(checkouts[name]),
                "runs": [{"seconds": round(w, 2), "cpu_seconds": round(c, 2), "load_before": round(l, 2)}
                         for w, c, l in runs], "cpu_seconds": round(statistics.median(c for _, c, _ in runs), 1)}
        base = None
        if not args.fresh_only:
            _, base = _timed(lambda: [answer(m, s) for m, s in DEFAULT_MODELS])
        runs = [] if args.fresh_only else [("default", "default", {})]
        if args.probe:  # the same folder twice: the second run finds the probes cached
            runs += [("default --probe (cold)", "probed", {"probe": True}), ("default (probes cached)", "probed", {})]
        if not (args.no_train or args.fresh_only):
            runs.append(("train+visualize", "train", {"train": True, "visualize": True}))
        for name, folder, options in runs:
            report, seconds = _timed(lambda: build(out=Path(tmp) / folder, progress=False, **options))
            rows[name] = {"seconds": round(seconds, 1), "budget": BUDGETS[name], "vs_answer": round(seconds / base, 2),
                          "probe": report.config["probe"], "parts": report.config["seconds_per_part"]}
    if base is not None:
        print(f"baseline: edgewise.answer on the two default models: {base:.1f} s")
    for name, r in rows.items():
        verdict = "no budget" if r["budget"] is None else \
            f"{'within' if r['seconds'] <= r['budget'] else 'OVER'} the {r['budget']:.0f} s budget"
        versus = "" if r["vs_answer"] is None else f"{r['vs_answer']:.2f}× answer; "
        print(f"{name:31s} {r['seconds']:7.1f} s  ({versus}{verdict}; section 8 "
              f"{'shown' if r['probe'] else 'not computed'})")
        for part, sec in sorted(r["parts"].items(), key=lambda kv: -kv[1])[:8]:
            print(f"    {sec:7.1f} s  {part}")
    print(f"load average {load_average():.2f} at end")
    if args.json:
        Path(args.json).write_text(json.dumps({"answer_seconds": base, "threads": torch.get_num_threads(),
                                               "torch": torch.__version__, "runs": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
