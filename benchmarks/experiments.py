"""Benchmark: wall time per epoch of every quick task, and the process pool against in-process execution.

Part 1 runs each task's quick configuration (its first default remedy) in this process: once to build and
cache the data, then timed with another seed. It reports seconds per run and per epoch and what a default
quick sweep (default remedies × 3 seeds) costs on one core.

Part 2 times one sweep — ``--task``'s default remedies × ``--seeds`` seeds at ``--size`` — on the
``inprocess`` backend (one run after another, one torch thread, the runner's default) and on the ``process``
backend (``--workers`` processes of one thread each; the pool's start-up and each worker's own data
generation included), and prints the speed-up. Both must give the same accuracies (each run is seeded and
uses the same thread count); the script exits 1 if they do not. For reference it also times the in-process
sweep with two torch threads (``--threads 2``; not compared: float sums and so results depend slightly on
the thread count).

Run::

    .venv/bin/python benchmarks/experiments.py [--task border-1d] [--seeds 2] [--size quick|full] [--workers 2]
                                               [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import torch

from edgewise import experiments


def per_epoch() -> list[dict]:
    rows = []
    for name, task in experiments.TASKS.items():
        experiments.run(name, [task.remedies[0]], seeds=[0], progress=False)  # builds and caches the data
        start = time.perf_counter()
        exp = experiments.run(name, [task.remedies[0]], seeds=[1], progress=False)
        seconds = time.perf_counter() - start
        epochs = exp.config["epochs"]
        rows.append({"task": name, "remedy": task.remedies[0], "epochs": epochs, "run_s": seconds,
                     "epoch_s": seconds / epochs, "sweep_runs": len(task.remedies) * 3,
                     "sweep_estimate_s": seconds * len(task.remedies) * 3})
    return rows


def sweep(task: str, seeds: int, size: str, backend: str, workers: int | None, threads: int = 1):
    start = time.perf_counter()
    exp = experiments.run(task, seeds=seeds, size=size, backend=backend, workers=workers, threads=threads,
                          progress=False)
    return time.perf_counter() - start, exp


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="border-1d")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--size", choices=("quick", "full"), default="quick", help="size of the part-2 sweep")
    p.add_argument("--workers", type=int, default=None, help="pool size (default: one per core)")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    print(f"# torch {torch.__version__}, python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"{torch.get_num_threads()} torch threads, load {os.getloadavg()[0]:.2f}")
    rows = per_epoch()
    print(f"{'task':<18} {'remedy':<10} {'epochs':>6} {'run s':>7} {'s/epoch':>8} {'sweep est. s':>13}")
    for r in rows:
        print(f"{r['task']:<18} {r['remedy']:<10} {r['epochs']:>6} {r['run_s']:>7.2f} {r['epoch_s']:>8.3f} "
              f"{r['sweep_estimate_s']:>13.1f}")
    local_s, local = sweep(args.task, args.seeds, args.size, "inprocess", None)
    pool_s, pool = sweep(args.task, args.seeds, args.size, "process", args.workers)
    two_s, _ = sweep(args.task, args.seeds, args.size, "inprocess", None, threads=2)
    same = all(a["metrics"]["accuracy"] == b["metrics"]["accuracy"] for a, b in zip(local.runs, pool.runs))
    n = len(local.runs)
    print(f"\nsweep {args.task} ({args.size}): {n} runs; inprocess {local_s:.1f} s, process pool {pool_s:.1f} s "
          f"→ speed-up {local_s / pool_s:.2f}x; same accuracies: {same}")
    print(f"for reference, inprocess with 2 torch threads: {two_s:.1f} s ({local_s / two_s:.2f}x of 1 thread)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"per_epoch": rows, "sweep": {"task": args.task, "size": args.size, "runs": n,
                                                     "inprocess_s": local_s, "process_s": pool_s,
                                                     "inprocess_2_threads_s": two_s,
                                                     "speedup": local_s / pool_s, "same": same}}, f, indent=1)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
