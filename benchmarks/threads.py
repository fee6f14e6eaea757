"""How many torch threads edgewise should use: small, medium and large work at 1 thread vs every core.

    .venv/bin/python benchmarks/threads.py                  # on the machine as it is
    .venv/bin/python benchmarks/threads.py --load 1         # with one extra busy process (a loaded machine)
    .venv/bin/python benchmarks/threads.py --json benchmarks/results/threads.json

Each workload is timed at 1 thread and at every core, interleaved (1, all, 1, all, ...), medians of --repeats.
``--load K`` starts K processes that keep one core each busy with their own matrix products for the whole run,
the situation of a shared machine. The printed ratio is time(all cores) / time(1 thread): above 1 means one
thread is faster. ``edgewise._threads.default_threads`` is chosen from these numbers (README, "Performance").
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

import torch

from edgewise import nets
from _timing import load_average, machine_line  # benchmarks/ is on sys.path when a script here runs
from edgewise._threads import cores


def _spin(stop) -> None:
    torch.set_num_threads(1)
    a = torch.randn(256, 256)
    while not stop.is_set():
        a = (a @ a).tanh_()


def _workloads():
    import torchvision

    tiny = nets.from_spec("8*conv3", (1, 32, 32), width=8)
    x_tiny = torch.randn(1, 1, 32, 32, requires_grad=True)
    r18 = torchvision.models.resnet18().eval()
    x_r18 = torch.randn(16, 3, 64, 64, requires_grad=True)
    from edgewise.pretrained import efficientnet_lite0
    eff = efficientnet_lite0().eval()
    x_eff = torch.randn(8, 3, 224, 224)

    def grad(model, x):
        return lambda: torch.autograd.grad(model(x).sum(), x)[0]

    def forward(model, x):
        def run():
            with torch.no_grad():
                return model(x)
        return run

    return {"tiny: 8*conv3 w8 1x32x32, fwd+bwd, batch 1": grad(tiny, x_tiny),
            "medium: ResNet-18 3x64x64, fwd+bwd, batch 16": grad(r18, x_r18),
            "large: EfficientNet-Lite0 3x224x224, forward, batch 8": forward(eff, x_eff)}


def measure(repeats: int) -> dict:
    n = cores()
    rows = {}
    for name, fn in _workloads().items():
        times = {1: [], n: []}
        for k in (1, n):  # warm-up at both settings
            torch.set_num_threads(k)
            fn()
        for _ in range(repeats):
            for k in (1, n):
                torch.set_num_threads(k)
                t = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t)
        one, every = statistics.median(times[1]), statistics.median(times[n])
        rows[name] = {"one_thread_s": one, "all_cores_s": every, "cores": n, "all_over_one": every / one}
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--load", type=int, default=0, help="extra busy processes, one core each")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    spinners = [ctx.Process(target=_spin, args=(stop,), daemon=True) for _ in range(args.load)]
    for p in spinners:
        p.start()
    try:
        load = load_average()
        rows = measure(args.repeats)
    finally:
        stop.set()
        for p in spinners:
            p.join(timeout=5)
    print(f"{machine_line()}; extra busy processes {args.load}; load average {load:.2f} while measuring; "
          f"medians of {args.repeats}, interleaved")
    print(f"{'workload':58s} {'1 thread':>10s} {'all cores':>10s} {'all/1':>7s}")
    for name, r in rows.items():
        print(f"{name:58s} {r['one_thread_s'] * 1e3:8.1f}ms {r['all_cores_s'] * 1e3:8.1f}ms {r['all_over_one']:7.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"load": args.load, "load_average": load, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
