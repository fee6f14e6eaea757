"""Benchmark: the first trace of timm's model families (``edgewise.trace`` on an architecture not seen), against
another checkout of edgewise, interleaved.

Two worker processes, one per checkout, each import their own edgewise (one torch thread) and build every model once
(the timm sweep's picks, at the sweep's input and ``create_model`` arguments: ``benchmarks/results/timm_sweep.json``,
``pretrained=False``). For each model the two take turns (A B A B …, ``--repeats`` each, so that every trace
follows one by the other worker: in A B B A order a trace right after the same worker's previous one ran 10–25 %
faster on traces of a few milliseconds, which favoured the worker that got more of them): every cache cleared
(``clear_caches``), then one timed ``edgewise.trace``. The first call of each model in a worker also pays for its
classes' first use and is reported apart; the medians of the others are compared. A model either checkout refuses
is listed with its error and left out of the totals.

Run::

    .venv/bin/python benchmarks/trace_timm.py --against CHECKOUT [--models NAME ...] [--max-params 2e8]
        [--repeats 3] [--json benchmarks/results/trace_timm.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SWEEP = HERE / "results" / "timm_sweep.json"


def worker() -> None:
    """Answer one JSON request a line: {"model", "kwargs", "input"} -> {"s": seconds, "cpu": CPU seconds} of a cold
    trace, or {"error": ...}; the edgewise imported is the one on ``EDGEWISE_PATH``."""
    sys.path.insert(0, os.environ["EDGEWISE_PATH"])
    import gc
    import warnings

    import timm
    import torch

    import edgewise
    from edgewise.pathways import clear_caches

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    edgewise.trace(torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3)), (1, 8, 8))  # (torch's lazy start-up)
    print(json.dumps({"edgewise": edgewise.__file__}), flush=True)
    built: dict = {}
    for line in sys.stdin:
        job = json.loads(line)
        try:
            if job["model"] not in built:
                built.clear()
                torch.manual_seed(0)
                built[job["model"]] = timm.create_model(job["model"], pretrained=False, **job["kwargs"]).eval()
            model = built[job["model"]]
            clear_caches()
            gc.collect()
            c, t = time.thread_time(), time.perf_counter()
            edgewise.trace(model, tuple(job["input"]))
            out = {"s": time.perf_counter() - t, "cpu": time.thread_time() - c}
        except Exception as e:  # (a refusal: reported, left out of the totals)
            out = {"error": f"{type(e).__name__}: {str(e)[:200]}"}
        print(json.dumps(out), flush=True)


class Worker:
    def __init__(self, checkout: Path):
        env = {**os.environ, "EDGEWISE_PATH": str(checkout.resolve()), "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        self.edgewise = json.loads(self.proc.stdout.readline())["edgewise"]

    def trace(self, job: dict) -> dict:
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def jobs(names: list[str] | None, max_params: float) -> list[dict]:
    """The sweep's traced picks (``names`` only, if given; LookupError naming close ones for a name it has not)."""
    import difflib

    results = [r for r in json.loads(SWEEP.read_text())["results"] if r.get("status") == "traced"]
    known = [r["model"] for r in results]
    for name in names or ():
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            raise LookupError(f"no traced family {name!r} in {SWEEP.name}"
                             + (f"; did you mean {', '.join(close)}?" if close else ""))
    picked = [r for r in results if r["params"] <= max_params and (not names or r["model"] in names)]
    return [{"model": r["model"], "kwargs": r["kwargs"], "input": r["input"]} for r in picked]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--against", metavar="CHECKOUT", type=Path, required="--worker" not in (argv or sys.argv))
    ap.add_argument("--models", nargs="+", help="timm model names (default: every family the sweep traced)")
    ap.add_argument("--max-params", type=float, default=2e8, help="leave out larger models (default 2e8)")
    ap.add_argument("--repeats", type=int, default=3, help="timed cold traces per model and checkout, after the first")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    if args.worker:
        worker()
        return 0
    if not (args.against / "edgewise" / "__init__.py").is_file():
        ap.error(f"{args.against} has no edgewise package (pass the root of another checkout)")
    try:
        todo = jobs(args.models, args.max_params)
    except LookupError as e:
        ap.error(str(e))
    sys.path.insert(0, str(HERE))
    import torch

    from _timing import machine_line

    torch.set_num_threads(1)  # (as the workers: the line says so)

    print(machine_line())
    here, there = Worker(HERE.parent), Worker(args.against)
    print(f"A: {here.edgewise}\nB: {there.edgewise}")
    rows = []
    try:
        for job in todo:
            times = {"A": [], "B": []}
            errors = {}
            for r in range(args.repeats + 1):
                for side in "AB":  # (each trace right after one by the other worker: see the docstring)
                    out = (here if side == "A" else there).trace(job)
                    if "error" in out:
                        errors[side] = out["error"]
                    else:
                        times[side].append(out["s"])
            row = {**job, "errors": errors, "first_s": {k: v[0] if v else None for k, v in times.items()},
                   "times_s": times}
            if not errors:
                row["median_s"] = {k: statistics.median(v[1:]) for k, v in times.items()}
                row["ratio"] = row["median_s"]["B"] / row["median_s"]["A"]
                print(f"{job['model']:40s} A {row['median_s']['A'] * 1e3:8.1f} ms  B {row['median_s']['B'] * 1e3:8.1f}"
                      f" ms  B/A {row['ratio']:5.2f}", flush=True)
            else:
                print(f"{job['model']:40s} {errors}", flush=True)
            rows.append(row)
    finally:
        here.close()
        there.close()
    timed = [r for r in rows if "ratio" in r]
    ratios = sorted(r["ratio"] for r in timed)
    summary = {"models": len(rows), "timed": len(timed),
               "total_s": {k: sum(r["median_s"][k] for r in timed) for k in "AB"},
               "median_ratio": statistics.median(ratios) if ratios else None,
               "faster_by_10pct": sum(x > 1.1 for x in ratios), "slower_by_10pct": sum(x < 1 / 1.1 for x in ratios)}
    print(f"\n{summary['timed']} models: total A {summary['total_s']['A']:.2f} s, B {summary['total_s']['B']:.2f} s "
          f"(B/A {summary['total_s']['B'] / summary['total_s']['A']:.2f}); median B/A {summary['median_ratio']:.2f}; "
          f"A faster by >10 % on {summary['faster_by_10pct']}, slower by >10 % on {summary['slower_by_10pct']}")
    if args.json:
        meta = {"machine": machine_line(), "against": str(args.against), "repeats": args.repeats,
                "date": time.strftime("%Y-%m-%d %H:%M"), "a": here.edgewise, "b": there.edgewise}
        args.json.write_text(json.dumps({"meta": meta, "summary": summary, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
