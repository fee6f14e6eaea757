"""Benchmark: the spatial-bias probe (:func:`edgewise.probe.bias.bias`) and the blind-spot map
(:func:`edgewise.probe.bias.blind_spots`) on EfficientNet-Lite0 (ImageNet weights, 3×224×224) and on a spec net.

Timed, each the median of ``--repeats`` calls after a warm-up (no cache):

* ``bias``: the mean of every convolution's activations at every position over ``--n`` photos (random crops
  and flips) in one float64 pass; on the spec net also against the obvious baseline that stacks every
  activation and takes numpy means and variances (the numbers must agree to 1e-9);
* ``blind_spots``: the cat's face (64×64 at 224) slid over the default grid (at most 34 positions per axis,
  both borders and the centre included) of a blank background; on the spec net also against a loop that
  builds each shifted image and runs the model on it alone (the maps must agree to 1e-6).

Run::

    .venv/bin/python benchmarks/probe_bias.py [--repeats 3] [--n 64] [--threads 1] [--json FILE] [--skip-efficientnet]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch

from edgewise import nets
from edgewise.probe._common import generator, inputs, subject
from edgewise.probe.bias import _stimulus, bias, blind_spots
from edgewise.visualize.engine import activations

from _timing import timed  # benchmarks/ is on sys.path when a script here runs

SPEC = "conv3/c16, conv3/s2, 3*conv3, gap, fc10"
SPEC_SHAPE = (1, 64, 64)




def stacked_deviation(net, x, layers) -> list[float]:
    """The baseline: every activation kept, numpy's variances (float64)."""
    with torch.no_grad():
        acts = activations(net, x, layers)
    out = []
    for layer in layers:
        a = acts[layer].double().numpy()
        total, pos = a.var(axis=(0, 2, 3)), a.mean(0).var(axis=(1, 2))
        live = total > 0
        out.append(float((pos[live] / total[live]).mean()))
    return out


def slow_blind_spots(net, r) -> np.ndarray:
    """The baseline: each shifted image built and run alone."""
    sub = subject(net)
    stim = _stimulus(sub, r.stimulus, r.size, generator(r.seed))  # the same digit
    out = np.zeros((len(r.grid0), len(r.grid1)))
    with torch.no_grad():
        for i, y in enumerate(r.grid0):
            for j, x in enumerate(r.grid1):
                img = torch.zeros(1, *sub.shape)
                img[0, :, y:y + r.size, x:x + r.size] = stim
                out[i, j] = float(net(img)[0, r.target["class"]])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-efficientnet", action="store_true")
    ap.add_argument("--json", metavar="FILE", default=str(Path(__file__).parent / "results" / "probe_bias.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows, ok = [], True

    net = nets.from_spec(SPEC, SPEC_SHAPE, width=16, seed=0)
    t_bias, r = timed(lambda: bias(net, data="digits", n=4 * args.n, progress=False), args.repeats)
    x = inputs(subject(net), "digits", 4 * args.n, 0)
    t_stack, dev = timed(lambda: stacked_deviation(net, x, r.layers), args.repeats)
    diff = max(abs(a - b) / max(abs(b), 1e-300) for a, b in zip(r.deviation, dev))
    ok &= diff < 1e-9
    rows.append({"what": f"bias, spec net {SPEC} {'x'.join(map(str, SPEC_SHAPE))}, {4 * args.n} digits",
                 "seconds": t_bias, "baseline": "stack every activation, numpy", "baseline_seconds": t_stack,
                 "max_relative_difference": diff})
    t_bs, b = timed(lambda: blind_spots(net, progress=False), args.repeats)
    t_loop, slow = timed(lambda: slow_blind_spots(net, b), args.repeats)
    diff_b = float(np.abs(b.response - slow).max() / max(np.abs(slow).max(), 1e-300))
    ok &= diff_b < 1e-6
    rows.append({"what": f"blind_spots, spec net, {b.response.size} positions (digit {b.size} px)",
                 "seconds": t_bs, "baseline": "one image per forward", "baseline_seconds": t_loop,
                 "max_relative_difference": diff_b})
    if not args.skip_efficientnet:
        ref = "pretrained:efficientnet-lite0"
        t_e, re = timed(lambda: bias(ref, n=args.n, progress=False), args.repeats)
        rows.append({"what": f"bias, EfficientNet-Lite0 3x224x224, {args.n} photos, {len(re.layers)} convolutions",
                     "seconds": t_e})
        # warmed by the bias runs above (model built, photos decoded); one run is 841 forwards
        t_eb, be = timed(lambda: blind_spots(ref, progress=False), args.repeats, warm=False)
        rows.append({"what": f"blind_spots, EfficientNet-Lite0, {be.response.size} positions (cat face "
                             f"{be.size} px, stride {be.stride[0]})", "seconds": t_eb})

    print(f"{torch.get_num_threads()} threads, torch {torch.__version__}, {platform.machine()}, median of "
          f"{args.repeats}")
    for row in rows:
        line = f"  {row['what']:<92s} {row['seconds']:8.2f} s"
        if "baseline_seconds" in row:
            ratio = row["baseline_seconds"] / row["seconds"]
            line += (f"   {row['baseline']}: {row['baseline_seconds']:.2f} s (ratio {ratio:.2f}x; difference "
                     f"{row['max_relative_difference']:.1e})")
        print(line)
    doc = {"threads": torch.get_num_threads(), "torch": torch.__version__, "machine": platform.machine(),
           "repeats": args.repeats, "rows": rows, "agree": bool(ok)}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.json}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
