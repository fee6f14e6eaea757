"""Benchmark: the perturbation probe (:func:`edgewise.probe.perturb.perturb`) on EfficientNet-Lite0 and on the
trained border-digits net, with an unbatched loop as the baseline.

Timed in one run, each the median of ``--repeats`` calls after a warm-up, one torch thread:

* ``efficientnet-lite0``: ``pretrained:efficientnet-lite0`` on 3×224×224 photos, ``--eff-n`` images, one-pixel
  patches on a grid of stride ``--eff-stride`` (6×6 positions at 56: every 56th pixel, the last and the
  centre), trained weights only;
* ``border-digits``: the quick trained net (1×28×28) on 16 test digits, every pixel (stride 1), one-pixel
  patches, trained weights only;
* ``border-digits loop``: the same numbers by one forward per perturbed input (what one writes without the
  batched engine), on the first ``--loop-n`` digits and scaled to 16; the script checks that both agree.

Run::

    PYTHONPATH=. .venv/bin/python benchmarks/probe_perturb.py [--repeats 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch

from _timing import timed  # benchmarks/ is on sys.path when a script here runs




def loop(model, x: torch.Tensor, eps: float) -> np.ndarray:
    """One forward per (input, position, sign): ‖Δoutput‖/ε averaged over both signs."""
    n, _, h, w = x.shape
    out = np.zeros((n, h, w))
    with torch.no_grad():
        for i in range(n):
            y0 = model(x[i:i + 1]).double()
            for r in range(h):
                for c in range(w):
                    vals = []
                    for s in (1.0, -1.0):
                        xm = x[i:i + 1].clone()
                        xm[..., r, c] += s * eps
                        vals.append(float(((model(xm).double() - y0) / eps).norm()))
                    out[i, r, c] = sum(vals) / 2
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--eff-n", type=int, default=2)
    ap.add_argument("--eff-stride", type=int, default=56)
    ap.add_argument("--loop-n", type=int, default=2)
    ap.add_argument("--json", default="benchmarks/results/probe_perturb.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from edgewise.experiments import tasks, trained_model
    from edgewise.probe._common import subject
    from edgewise.probe.perturb import perturb

    eff = subject("pretrained:efficientnet-lite0").module
    opts = dict(baseline=None, progress=False)
    t_eff, r_eff = timed(lambda: perturb(eff, (3, 224, 224), data="photos", n=args.eff_n, stride=args.eff_stride,
                                         **opts), args.repeats)
    net = trained_model("border-digits", "same", 0)
    tests = tasks.get("border-digits").data(net.experiment["config"])[1]
    x = torch.cat([v[:6] for v, _ in tests.values()])[:16]
    t_bd, r_bd = timed(lambda: perturb(net, data=x, n=len(x), stride=1, eps=0.01, **opts), args.repeats)
    t_loop, m_loop = timed(lambda: loop(net, x[:args.loop_n], 0.01), args.repeats)
    t_loop *= len(x) / args.loop_n
    diff = float(np.abs(r_bd.trained[0, :args.loop_n] - m_loop).max() / np.abs(m_loop).max())
    forwards_eff = args.eff_n * 2 * int(np.prod([len(a) for a in r_eff.axes]))
    forwards_bd = len(x) * 2 * 28 * 28

    print(f"{torch.get_num_threads()} thread, torch {torch.__version__}, {platform.machine()}, median of "
          f"{args.repeats}")
    print(f"  efficientnet-lite0 3x224x224, {args.eff_n} photos, grid {r_eff.region.shape}: {t_eff:7.2f} s "
          f"({forwards_eff / t_eff:.0f} perturbed images/s)")
    print(f"  border-digits 1x28x28, 16 digits, every pixel:      {t_bd:7.2f} s "
          f"({forwards_bd / t_bd:.0f} perturbed images/s)")
    print(f"  border-digits, unbatched loop (scaled from {args.loop_n}):    {t_loop:7.2f} s   "
          f"ratio loop/edgewise {t_loop / t_bd:.1f}x; largest relative difference {diff:.1e}")
    doc = {"threads": torch.get_num_threads(), "torch": torch.__version__, "repeats": args.repeats,
           "efficientnet": {"n": args.eff_n, "stride": args.eff_stride, "grid": list(r_eff.region.shape),
                            "seconds": t_eff, "images_per_s": forwards_eff / t_eff},
           "border_digits": {"n": len(x), "stride": 1, "seconds": t_bd, "images_per_s": forwards_bd / t_bd,
                             "loop_seconds_scaled": t_loop, "ratio": t_loop / t_bd, "rel_diff": diff}}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(doc, indent=1))
    return 0 if diff < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
