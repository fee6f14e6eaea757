"""Benchmark: ``edgewise.visualize.maximize`` against torch-lucent's ``render_vis`` and one image at a time.

For each model (default: the VGG-like spec net at 3×64×64, unit ``(conv4, 3)``; EfficientNet-Lite0 with its
packaged ImageNet weights at 3×224×224, unit ``(_blocks.8, 3)``, receptive field 211 px; ``efficientnet-mid``:
the same network's unit ``(_blocks.5, 3)``, receptive field 83 px), one unit at the 9 anchors × ``--seeds`` seeds
is optimised for ``--steps`` Adam steps (lr 0.05) from a Fourier parameterisation with a 1/f spectrum, images
through a sigmoid, no colour decorrelation, no jitter or other transforms. In the same run, interleaved,
median of ``--repeats`` (each after one warm-up call of every column with one step):

* ``edgewise``: one ``maximize`` call for the whole batch (forward stopped at the layer; the model runs only on
  each objective's receptive-field crop, BatchNorms folded, 1×1 convolutions as matrix products; the shortcuts
  were checked against the full input on a random image by an earlier call on this architecture, whose verdict
  ``edgewise.visualize.memo`` keeps);
* ``no memo``: the same call with that memo cleared first (the BatchNorm pairs traced again, the receptive
  fields and the layers' shapes worked out again, the shortcuts checked on a random image against the plain
  forward; the tracer's own cache is kept);
* ``full input``: the same call with ``crop=False`` (the engine before crops);
* ``one at a time``: one ``maximize(crop=False)`` call per position and seed (what a loop over images costs);
* ``lucent``: ``render_vis`` with ``param.image(w, batch=B, fft=True, decorrelate=False)``, ``transforms=[]``,
  the objective ``sum(objectives.neuron(layer, ch, x, y, batch=b))`` over the B rows, ``progress=False``,
  ``show_image=False``; ``fixed_image_size`` = the input size (lucent upsamples smaller images to 224
  otherwise); ImageNet normalisation (lucent's ``preprocess``) for EfficientNet, none for the spec net. Lucent
  runs the full model with forward hooks on every module. Two settings: the weights as a model comes
  (``requires_grad`` on, as lucent's README uses it, so autograd also computes weight gradients) and frozen
  (``requires_grad_(False)``), and frozen with one ``render_vis`` per position (a batch of the seeds: lucent's
  one objective at a time; smaller batches of large images can run faster on a CPU). The goal is measured
  against the fastest of the three.
* ``lucent defaults``: lucent's own parameterisation and transforms (colour decorrelation, pad, jitter, scale,
  rotate), weights as they come; for reference only (its transforms move the unit's position).

The cold time is the very first ``maximize`` call of the process (imports, tracing, allocator), reported
apart from the warm medians. Ratios are taken within one run. The script exits 1 only when a ratio is absurd
(not finite or edgewise more than 100× slower than lucent), never because a goal is missed. Nothing is
downloaded. EfficientNet is built with ``traceable=True`` (same outputs; the package's static-same-padding
convolutions as plain ones) so that the receptive-field tracer can read it.

Run::

    .venv/bin/python benchmarks/visualize.py [--models spec efficientnet] [--steps 16] [--repeats 3]
                                             [--threads 1] [--json benchmarks/results/visualize.json]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import warnings

import torch

from edgewise import nets
from edgewise import visualize as V
from edgewise.visualize import memo

from _timing import load_average, machine_line  # benchmarks/ is on sys.path when a script here runs

ANCHORS = ("center", "top", "bottom", "left", "right", "top_left", "top_right", "bottom_left", "bottom_right")
GOAL = 3.0
SPEC = "conv3/c32, conv3/c32, maxpool2, conv3/c64, conv3/c64, maxpool2, conv3/c128, conv3/c128"
COLUMNS = ("edgewise", "no_memo", "full_input", "one_at_a_time", "lucent", "lucent_frozen", "lucent_per_position",
           "lucent_defaults")
LUCENT = ("lucent", "lucent_frozen", "lucent_per_position")  # the settings the goal is measured against


def imagenet_normalise(x: torch.Tensor) -> torch.Tensor:
    from edgewise.pretrained import IMAGENET_MEAN, IMAGENET_STD

    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def build(name: str, size: int | None):
    """(model, input shape, layer, channel, preprocess, description)."""
    if name in ("efficientnet", "efficientnet-mid"):
        from edgewise.pretrained import efficientnet_lite0

        size = size or 224
        model = efficientnet_lite0(image_size=size, traceable=True)
        layer = "_blocks.8" if name == "efficientnet" else "_blocks.5"
        return model, (3, size, size), layer, 3, imagenet_normalise, "EfficientNet-Lite0 (ImageNet weights)"
    if name == "spec":
        size = size or 64
        shape = (3, size, size)
        return nets.from_spec(SPEC, shape, seed=0), shape, "conv4", 3, None, f"spec net '{SPEC}'"
    raise SystemExit(f"unknown model {name!r}")


def clock(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def lucent_render(model, layer: str, ch: int, shape, index, seeds: int, steps: int, preprocess: bool,
                  defaults: bool = False):
    """lucent's render_vis of the unit at every (row, col) of ``index`` × seeds in one batch."""
    from lucent.optvis import objectives, param, render

    name = layer.replace(".", "_")  # lucent names layers by joining module names with "_"
    obj = sum(objectives.neuron(name, ch, x=c, y=r, batch=p * seeds + s)
              for p, (r, c) in enumerate(index) for s in range(seeds))
    batch, h, w = len(index) * seeds, shape[1], shape[2]
    if defaults:
        image = lambda: param.image(w, h, batch=batch)  # noqa: E731
        transforms = None
    else:
        image = lambda: param.image(w, h, batch=batch, fft=True, decorrelate=False)  # noqa: E731
        transforms = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return render.render_vis(model, obj, image, transforms=transforms, thresholds=(steps,),
                                 preprocess=preprocess, progress=False, show_image=False, fixed_image_size=h)


def bench(name: str, size: int | None, steps: int, repeats: int, seeds: int) -> dict:
    model, shape, layer, ch, prep, what = build(name, size)
    model.eval()
    objs = [V.unit(layer, ch, p) for p in ANCHORS]
    batch = len(objs) * seeds
    opts = {"seeds": seeds, "jitter": 0, "preprocess": prep, "lr": 0.05}
    cold = clock(lambda: V.maximize(model, objs, shape, steps=steps, **opts))
    index = [V.resolve(p, V.activations(model, torch.zeros(1, *shape), layer)[layer].shape[2:]) for p in ANCHORS]
    map_shape = list(V.activations(model, torch.zeros(1, *shape), layer)[layer].shape[1:])

    def weights(trainable: bool):
        for p in model.parameters():
            p.requires_grad_(trainable)

    def run(column: str, n: int):
        if column == "edgewise":
            return V.maximize(model, objs, shape, steps=n, **opts)
        if column == "no_memo":
            memo.clear()
            return V.maximize(model, objs, shape, steps=n, **opts)
        if column == "full_input":
            return V.maximize(model, objs, shape, steps=n, crop=False, **opts)
        if column == "one_at_a_time":
            for o in objs:
                for s in range(seeds):
                    V.maximize(model, o, shape, steps=n, crop=False, **{**opts, "seeds": 1, "seed": s})
            return None
        weights(column in ("lucent", "lucent_defaults"))
        try:
            if column == "lucent_per_position":
                return [lucent_render(model, layer, ch, shape, [i], seeds, n, prep is not None) for i in index]
            return lucent_render(model, layer, ch, shape, index, seeds, n, prep is not None,
                                 defaults=column == "lucent_defaults")
        finally:
            weights(True)

    for column in COLUMNS:
        run(column, 1)  # warm-up: lazy initialisation, allocator, oneDNN primitives
    t = {k: [] for k in COLUMNS + ("edgewise_0_steps",)}
    for _ in range(repeats):  # interleaved, so that a busy spell of the machine hits every column alike
        for column in COLUMNS:
            t[column].append(clock(lambda: run(column, steps)))
        t["edgewise_0_steps"].append(clock(lambda: run("edgewise", 0)))
    vis = run("edgewise", steps)
    med = {k: statistics.median(v) for k, v in t.items()}
    fastest = min(LUCENT, key=med.get)
    best_lucent = med[fastest]
    return {
        "model": name, "what": what, "input": "x".join(map(str, shape)), "layer": layer, "channel": ch,
        "map": map_shape, "batch": batch, "steps": steps, "repeats": repeats, "crop": vis.config["crop"],
        "cold_s": cold, "times_s": t, "median_s": med,
        "fastest_lucent": fastest, "vs_lucent": best_lucent / med["edgewise"],
        "vs_lucent_no_memo": best_lucent / med["no_memo"],
        "vs_lucent_as_documented": med["lucent"] / med["edgewise"],
        "vs_lucent_defaults": med["lucent_defaults"] / med["edgewise"],
        "vs_one_at_a_time": med["one_at_a_time"] / med["edgewise"],
        "vs_full_input": med["full_input"] / med["edgewise"],
        "step_s": (med["edgewise"] - med["edgewise_0_steps"]) / steps, "fixed_s": med["edgewise_0_steps"],
        "goal_met": best_lucent / med["edgewise"] >= GOAL,
        "goal_met_no_memo": best_lucent / med["no_memo"] >= GOAL,
    }


def absurd(r: dict) -> list[str]:
    bad = []
    for key in ("vs_lucent", "vs_lucent_no_memo", "vs_one_at_a_time", "vs_full_input"):
        v = r[key]
        if not (math.isfinite(v) and 0.01 <= v <= 1e5):
            bad.append(f"{r['model']}: {key} = {v:.3g}")
    return bad


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["spec", "efficientnet"],
                        choices=["spec", "efficientnet", "efficientnet-mid"])
    parser.add_argument("--size", type=int, default=None, help="input height = width (default 64 / 224)")
    parser.add_argument("--steps", type=int, default=16, help="optimisation steps of every run")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per position (default 4 / 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from importlib.metadata import version

    lucent = f"torch-lucent {version('torch-lucent')}"
    print(f"{machine_line(lucent)}; {args.steps} steps, "
          f"{len(ANCHORS)} positions, median of {args.repeats}", flush=True)
    rows = []
    for name in args.models:
        seeds = args.seeds or (4 if name == "spec" else 2)
        rows.append(bench(name, args.size, args.steps, args.repeats, seeds))
        print(f"  {name} done", flush=True)

    head = (f"{'model':<16} {'input':<10} {'layer':<10} {'batch':>5} {'edgewise':>9} {'no memo':>8} {'full in':>8} "
            f"{'1 at a time':>11} {'lucent':>8} {'frozen':>8} {'per pos':>8} {'defaults':>8} | {'× lucent':>8} "
            f"{'× 1-by-1':>8} {'× full':>7}")
    print("\n" + head + "\n" + "-" * len(head))
    for r in rows:
        m = r["median_s"]
        print(f"{r['model']:<16} {r['input']:<10} {r['layer']:<10} {r['batch']:>5} {m['edgewise']:>8.2f}s "
              f"{m['no_memo']:>7.2f}s {m['full_input']:>7.2f}s {m['one_at_a_time']:>10.2f}s {m['lucent']:>7.2f}s "
              f"{m['lucent_frozen']:>7.2f}s {m['lucent_per_position']:>7.2f}s {m['lucent_defaults']:>7.2f}s | "
              f"{r['vs_lucent']:>7.2f}x "
              f"{r['vs_one_at_a_time']:>7.2f}x {r['vs_full_input']:>6.2f}x")
    print("\nedgewise = one maximize over 9 positions × seeds on receptive-field crops (warm: what an earlier call\n"
          "on the model proved is reused); no memo = the same with the engine's memo cleared first (the BatchNorm\n"
          "pairs, fields, shapes and the shortcut check worked out again); full in = the same with crop=False;\n"
          "1 at a time = one maximize(crop=False) per position and seed; lucent = render_vis with the same\n"
          "parameterisation, batch and objective, weights as they come (requires_grad); frozen = the same with\n"
          "frozen weights; per pos = frozen, one render_vis per position (a batch of its seeds); defaults =\n"
          "lucent's own parameterisation and transforms. × lucent = the fastest of lucent, frozen and per pos /\n"
          "edgewise; × 1-by-1 = one at a time / edgewise; × full = full input / edgewise (all warm medians).")
    for r in rows:
        print(f"{r['model']}: cold first call {r['cold_s']:.2f} s (warm {r['median_s']['edgewise']:.2f} s); "
              f"fixed cost per call (0 steps, warm: the memo looked up, final images and forward) "
              f"{r['fixed_s'] * 1e3:.0f} ms, then {r['step_s'] * 1e3:.1f} ms a step; crops used: {r['crop']}; "
              f"map {r['map']}; fastest lucent setting: {r['fastest_lucent']}; × lucent as documented "
              f"{r['vs_lucent_as_documented']:.2f}x, × lucent defaults {r['vs_lucent_defaults']:.2f}x")
    for r in rows:
        print(f"goal ≥ {GOAL:g}x the fastest lucent setting on {r['model']}: {'met' if r['goal_met'] else 'NOT met'} "
              f"({r['vs_lucent']:.2f}x; with the memo cleared: {r['vs_lucent_no_memo']:.2f}x, "
              f"{'met' if r['goal_met_no_memo'] else 'NOT met'})")
    print(f"load average {load_average():.2f} at end "
          "(timings on a busy machine are noisy; ratios are taken within one run)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"argv": sys.argv[1:], "threads": torch.get_num_threads(), "rows": rows}, f, indent=2)
    bad = [b for r in rows for b in absurd(r)]
    if bad:
        print("ABSURD: " + "; ".join(bad), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
