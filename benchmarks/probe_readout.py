"""Benchmark: the position readout probe (:func:`edgewise.probe.readout.readout`) on EfficientNet-Lite0 and a spec net.

For each model, timed in the same run (median of ``--repeats`` calls after a warm-up, one torch thread):

* ``readout``: the probe with its defaults (every convolution, or 12 spread evenly; three targets; ``--n``
  inputs: fitting, validation and held-out test);
* ``forward``: the model's forward pass over the same inputs with the same layers hooked (the part no readout
  can avoid), so the ratio shows what fitting and scoring the readouts adds.

Run::

    PYTHONPATH=. .venv/bin/python benchmarks/probe_readout.py [--repeats 3] [--n 64] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from edgewise.probe._common import check_layers, each_batch, inputs, subject
from edgewise.probe.readout import _spread, readout

MODELS = {
    "efficientnet-lite0 (3x224x224, photos)": ("pretrained:efficientnet-lite0", None, "photos"),
    "spec net conv3/c16, maxpool2, 3*conv3, gap, fc10 (1x64x64, digits)":
        ("conv3/c16, maxpool2, 3*conv3, gap, fc10", (1, 64, 64), "digits"),
}


def timed(fn, repeats: int):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--json", default=str(Path(__file__).parent / "results" / "probe_readout.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for label, (ref, shape, data) in MODELS.items():
        sub = subject(ref, shape)
        layers = _spread(check_layers(sub.module, None))
        x = inputs(sub, data, args.n, 0)
        t_read, all_read = timed(lambda: readout(ref, shape, data=data, n=args.n, progress=False), args.repeats)
        t_fwd, all_fwd = timed(lambda: each_batch(sub.module, x, layers, lambda s, a: None), args.repeats)
        r = readout(ref, shape, data=data, n=args.n, progress=False)
        rows.append({"model": label, "layers": len(layers), "n": args.n, "readout_s": round(t_read, 3),
                     "forward_s": round(t_fwd, 3), "ratio": round(t_read / t_fwd, 2),
                     "readout_all_s": [round(t, 3) for t in all_read], "forward_all_s": [round(t, 3) for t in all_fwd],
                     "deepest": r.summary["deepest"]})
    print(f"position readout, n = {args.n} inputs, median of {args.repeats}, {torch.get_num_threads()} thread, "
          f"torch {torch.__version__}, {platform.machine()}")
    print(f"  {'model':<72s} {'layers':>6s} {'readout':>9s} {'forward':>9s} {'ratio':>6s}")
    for row in rows:
        print(f"  {row['model']:<72s} {row['layers']:>6d} {row['readout_s']:>8.2f}s {row['forward_s']:>8.2f}s "
              f"{row['ratio']:>5.1f}x")
    doc = {"benchmark": "probe_readout", "repeats": args.repeats, "threads": torch.get_num_threads(),
           "torch": torch.__version__, "machine": platform.machine(), "rows": rows}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    print("wrote", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
