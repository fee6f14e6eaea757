"""Benchmark: ``edgewise.visualize.maximize``, batched against one image at a time, and its per-step overhead.

For each model (default: EfficientNet-Lite0 with its packaged ImageNet weights at 3×128×128, layer
``_blocks.8``; a VGG-like spec net at 3×64×64, layer ``conv4``; a tiny spec net at 3×32×32, layer ``conv3``),
in the same run, interleaved, median of ``--repeats``:

(a) **batched vs one at a time**: one unit at the 9 anchors × 4 seeds optimised by ONE ``maximize`` call
    (a batch of 36) against 36 separate calls (one position, one seed each), same steps. Beside it, what
    batching gains on the network alone (``net gain``): 36 bare forward+backward passes of one image against
    one pass of all 36. The steps cannot gain more than that; the separate calls also pay 36 times the
    per-call set-up (parameterisation, optimizer, hooks, shape check, final forward).
(b) **time per step inside maximize vs a bare step**: ``(t(steps=N) − t(steps=0)) / N`` of the batched
    call (set-up, the shape check and the final forward cancel), against a bare forward (stopped at the
    layer by hooks, as ``V.activations`` does) + backward to the input of the same 36 images with frozen
    weights. The pieces the engine adds (image parameterisation and per-row jitter crop, forward and
    backward; the Adam step) are timed alone on the same batch.

Ratios are taken within one run. The script exits 1 only if a ratio is absurd (not finite, or so far off
that something is broken: batching more than 5× slower, a step faster than half a bare pass, or more than 20×
slower), never because a goal is missed. Nothing is downloaded.

Run::

    .venv/bin/python benchmarks/visualize.py [--models efficientnet spec tiny] [--steps 8] [--repeats 3]
                                             [--threads N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

import edgewise
from edgewise import nets
from edgewise import visualize as V
from edgewise.visualize import param as param_mod
from edgewise.visualize.engine import _frozen

ANCHORS = ("center", "top", "bottom", "left", "right", "top_left", "top_right", "bottom_left", "bottom_right")
GOAL_BATCHED, GOAL_STEP = 5.0, 1.3
SPEC = "conv3/c32, conv3/c32, maxpool2, conv3/c64, conv3/c64, maxpool2, conv3/c128, conv3/c128"
TINY = "conv3/c16, maxpool2, conv3/c16, conv3/c16, conv3/c16"


def build(name: str, size: int | None):
    """(model, input shape, layer, channel, description)."""
    if name == "efficientnet":
        from edgewise.pretrained import efficientnet_lite0

        size = size or 128
        return efficientnet_lite0(image_size=size), (3, size, size), "_blocks.8", 3, "EfficientNet-Lite0 (ImageNet)"
    if name == "spec":
        size = size or 64
        shape = (3, size, size)
        return nets.from_spec(SPEC, shape, seed=0), shape, "conv4", 3, f"spec net '{SPEC}'"
    if name == "tiny":
        size = size or 32
        shape = (3, size, size)
        return nets.from_spec(TINY, shape, seed=0), shape, "conv3", 3, f"spec net '{TINY}'"
    raise SystemExit(f"unknown model {name!r}")


def clock(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench(name: str, size: int | None, steps: int, repeats: int, seeds: int) -> dict:
    model, shape, layer, ch, what = build(name, size)
    objs = [V.unit(layer, ch, p) for p in ANCHORS]
    batch = len(objs) * seeds

    def batched(n=steps):
        return V.maximize(model, objs, shape, seeds=seeds, steps=n, seed=0)

    def separate():
        for p in ANCHORS:
            for s in range(seeds):
                V.maximize(model, V.unit(layer, ch, p), shape, seeds=1, steps=steps, seed=s)

    # bare forward + backward to the input, frozen weights, forward stopped at the layer
    x_batch = torch.rand(batch, *shape, generator=torch.Generator().manual_seed(0))
    index = [V.resolve(p, V.activations(model, x_batch[:1], layer)[layer].shape[2:]) for p in ANCHORS]
    rows = torch.arange(batch)
    r_idx = torch.tensor([index[i // seeds][0] for i in range(batch)])
    c_idx = torch.tensor([index[i // seeds][1] for i in range(batch)])

    def bare(x):
        x = x.detach().requires_grad_(True)
        a = V.activations(model, x, layer)[layer]
        (g,) = torch.autograd.grad(a[rows[:len(x)], ch, r_idx[:len(x)], c_idx[:len(x)]].sum(), x)
        return g

    def bare_single():  # the same work one image at a time
        for i in range(batch):
            bare_one(i)

    def bare_one(i):
        x = x_batch[i:i + 1].detach().requires_grad_(True)
        a = V.activations(model, x, layer)[layer]
        (g,) = torch.autograd.grad(a[0, ch, r_idx[i], c_idx[i]], x)
        return g

    # the pieces maximize adds around the network, alone on the same batch
    jitter = 1
    gen = torch.Generator().manual_seed(0)
    images = param_mod.make("fourier", (batch, shape[0], *(n + 2 * jitter for n in shape[1:])), gen)
    pixels = param_mod.make("pixels", (batch, shape[0], *(n + 2 * jitter for n in shape[1:])), gen)
    opt = torch.optim.Adam(images.parameters(), lr=0.05)
    offsets = torch.randint(0, 2 * jitter + 1, (batch, 2), generator=gen)

    def fourier_crop():
        param_mod.crop(images(), offsets, shape[1:]).sum().backward()

    def fourier_only():
        images().sum().backward()

    def crop_only():
        canvas = images().detach().requires_grad_(True)
        param_mod.crop(canvas, offsets, shape[1:]).sum().backward()

    def pixels_crop():
        param_mod.crop(pixels(), offsets, shape[1:]).sum().backward()

    def adam():
        opt.step()

    with _frozen(model):
        for fn in (batched, lambda: batched(0), lambda: bare(x_batch), bare_single, fourier_crop, adam,
                   lambda: V.maximize(model, objs[0], shape, seeds=1, steps=steps)):
            fn()  # warm-up: lazy initialisation, allocator, oneDNN primitives for both batch sizes
        t = {k: [] for k in ("batched", "separate", "zero_steps", "bare", "bare_single", "fourier_crop",
                             "fourier", "crop", "pixels_crop", "adam")}
        for _ in range(repeats):  # interleaved, so that a busy spell of the machine hits every column alike
            t["batched"].append(clock(batched))
            t["separate"].append(clock(separate))
            t["zero_steps"].append(clock(lambda: batched(0)))
            t["bare"].append(clock(lambda: bare(x_batch)))
            t["bare_single"].append(clock(bare_single))
            for key, fn in (("fourier_crop", fourier_crop), ("fourier", fourier_only), ("crop", crop_only),
                            ("pixels_crop", pixels_crop), ("adam", adam)):
                t[key].append(statistics.median(clock(fn) for _ in range(5)))
    med = {k: statistics.median(v) for k, v in t.items()}
    per_step = (med["batched"] - med["zero_steps"]) / steps
    return {
        "model": name, "what": what, "input": "x".join(map(str, shape)), "layer": layer, "channel": ch,
        "map": list(V.activations(model, x_batch[:1], layer)[layer].shape[2:]), "batch": batch, "steps": steps,
        "repeats": repeats, "times_s": t, "median_s": med,
        "batched_s": med["batched"], "separate_s": med["separate"],
        "speedup_batched": med["separate"] / med["batched"],
        "net_gain": med["bare_single"] / med["bare"],
        "step_s": per_step, "bare_step_s": med["bare"], "step_ratio": per_step / med["bare"],
        "fixed_s": med["zero_steps"],
        "speedup_batched_min": min(t["separate"]) / min(t["batched"]),
        "step_ratio_min": ((min(t["batched"]) - min(t["zero_steps"])) / steps) / min(t["bare"]),
    }


def absurd(r: dict) -> list[str]:
    bad = []
    for key, lo, hi in (("speedup_batched", 0.2, 1e4), ("step_ratio", 0.5, 20.0), ("net_gain", 0.2, 1e4)):
        v = r[key]
        if not (math.isfinite(v) and lo <= v <= hi):
            bad.append(f"{r['model']}: {key} = {v:.3g} outside [{lo:g}, {hi:g}]")
    return bad


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["efficientnet", "spec", "tiny"],
                        choices=["efficientnet", "spec", "tiny"])
    parser.add_argument("--size", type=int, default=None, help="input height = width (default 128 / 64 / 32)")
    parser.add_argument("--steps", type=int, default=8, help="optimisation steps of every maximize call")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"edgewise {edgewise.__version__}, torch {torch.__version__}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, {platform.machine()}, "
          f"load average {load:.2f} at start; {args.steps} steps, {len(ANCHORS)} positions × {args.seeds} seeds, "
          f"median of {args.repeats}")
    rows = []
    for name in args.models:
        rows.append(bench(name, args.size, args.steps, args.repeats, args.seeds))
        print(f"  {name} done", flush=True)

    head = (f"{'model':<13} {'input':<9} {'layer':<10} {'1 call':>8} {'36 calls':>9} {'speed-up':>9} "
            f"{'net gain':>8} | {'step':>8} {'bare':>8} {'ratio':>6} | {'+param+crop':>11} {'+adam':>7}")
    print("\n" + head + "\n" + "-" * len(head))
    for r in rows:
        m = r["median_s"]
        print(f"{r['model']:<13} {r['input']:<9} {r['layer']:<10} {r['batched_s']:>7.2f}s {r['separate_s']:>8.2f}s "
              f"{r['speedup_batched']:>8.2f}x {r['net_gain']:>7.2f}x | {r['step_s'] * 1e3:>6.1f}ms "
              f"{r['bare_step_s'] * 1e3:>6.1f}ms {r['step_ratio']:>5.2f}x | {m['fourier_crop'] * 1e3:>9.1f}ms "
              f"{m['adam'] * 1e3:>5.1f}ms")
    print("\n1 call = one maximize over 9 positions × seeds; 36 calls = one per position and seed (same steps);\n"
          "speed-up = 36 calls / 1 call; net gain = 36 bare forward+backward passes of one image / one pass of\n"
          "the batch (what batching gains on the network itself, per step); step = (t(steps) − t(0 steps)) /\n"
          "steps of the batched call; bare = forward to the layer + backward to the input of the same batch, frozen\n"
          "weights; ratio = step / bare; +param+crop = Fourier image, per-row jitter crop, forward + backward,\n"
          "alone; +adam = one Adam step on the spectrum.")
    for r in rows:
        m = r["median_s"]
        print(f"{r['model']}: from the fastest repeat of each instead of the median: speed-up "
              f"{r['speedup_batched_min']:.2f}x, step / bare {r['step_ratio_min']:.2f}x")
        print(f"{r['model']}: fixed cost per call (0 steps: set-up, shape check, final forward) "
              f"{r['fixed_s'] * 1e3:.0f} ms; "
              f"pieces alone: Fourier {m['fourier'] * 1e3:.1f} ms, crop {m['crop'] * 1e3:.1f} ms, pixels+crop "
              f"{m['pixels_crop'] * 1e3:.1f} ms, Adam {m['adam'] * 1e3:.1f} ms; map {r['map']}")
    for r in rows:
        for label, v, goal, ok in (("batched speed-up", r["speedup_batched"], f"≥ {GOAL_BATCHED:g}x",
                                    r["speedup_batched"] >= GOAL_BATCHED),
                                   ("step / bare step", r["step_ratio"], f"≤ {GOAL_STEP:g}x",
                                    r["step_ratio"] <= GOAL_STEP)):
            print(f"goal {label} {goal} on {r['model']}: {'met' if ok else 'NOT met'} ({v:.2f}x)")
    print(f"load average {os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan'):.2f} at end "
          "(timings on a busy machine are noisy; ratios are taken within one run)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    bad = [b for r in rows for b in absurd(r)]
    if bad:
        print("ABSURD: " + "; ".join(bad), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
