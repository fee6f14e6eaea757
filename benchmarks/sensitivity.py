"""Benchmark: Monte-Carlo sensitivity over initialisations against a plain loop and captum's Saliency loop.

The issue's two configurations (issue 17), ``to="all"``, one N(0, 1) input per initialisation:

* ``resnet18``: torchvision ResNet-18 (``weights=None``, re-initialised by its own builder under each seed)
  at 3×64×64, N = 16 initialisations;
* ``spec``: the deep narrow spec net ``16*conv3`` (width 32, same padding, ReLU, torch's default
  initialisation) at 1×64×64, N = 64.

What each one computes, per initialisation (same seeds, same weights, same inputs, hence the same map):

* ``edgewise``: :func:`edgewise.sensitivity.init_sensitivity` (its default engine for the model: see
  :func:`edgewise.sensitivity.engine`); ``edgewise vmap`` forces the vmap engine (chunk 8) for comparison;
* ``loop``: what one writes without edgewise: the model's weights for the seed as its constructor draws them
  (ResNet-18: ``torch.manual_seed(s); resnet18(weights=None)``; the spec net: every layer's
  ``reset_parameters()`` under the seed, in place; both bit-identical to edgewise's draws, no deep copies),
  ``x.requires_grad_()``, ``model(x).sum().backward()`` (weight gradients too, as ``backward()`` does),
  accumulate ``x.grad ** 2`` averaged over the input channels;
* ``captum``: the same model for the seed, ``captum.attr.Saliency(lambda x: model(x).flatten(1).sum(1))
  .attribute(x, abs=True)`` (captum needs one scalar per example: the sum of every output unit, the objective
  of ``to="all"``), squared: edgewise's map is the mean of the squared gradient, and |g|² = g², so this is the
  same quantity. Saliency takes input gradients only (``torch.autograd.grad`` w.r.t. the input).

The repeats are interleaved (edgewise, loop, captum, edgewise, ...) and each timing is the median; the ratio of
medians is measured in the same run (the ratio of the fastest repeats is printed beside it: on a shared machine
the least disturbed repeats). The maps must agree to a relative ``RTOL`` (float32: ReLU gates within
rounding of zero may flip; the vmap engine's grouped convolutions round differently); the script exits 1 if
they do not. The floor printed is (forward + input-gradient FLOPs) × N at the machine's measured float32 matrix
product rate, plus the random draws of the weights (timed alone).

``--bf16`` adds edgewise in bfloat16 (information only: its map deviates from float32's, printed, not checked).

Run::

    .venv/bin/python benchmarks/sensitivity.py [--models resnet18,spec] [--repeats 5] [--threads 1] [--bf16] \
        [--json benchmarks/results/sensitivity.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time

import numpy as np
import torch

from _timing import machine_line  # benchmarks/ is on sys.path when a script here runs
from edgewise import _init, limits, models, nets
from edgewise import sensitivity as S

GOAL_RATIO = 2.0
RTOL = 1e-3
CONFIGS = {
    "resnet18": dict(model="torchvision:resnet18", shape=(3, 64, 64), n_inits=16),
    "spec": dict(model="16*conv3", shape=(1, 64, 64), n_inits=64, width=32),
}


def build(name: str) -> torch.nn.Module:
    cfg = CONFIGS[name]
    if "width" in cfg:
        return nets.from_spec(cfg["model"], cfg["shape"], width=cfg["width"])
    return models.load(cfg["model"])


class Baseline:
    """What a user writes without edgewise: per seed the model's weights as its constructor draws them, then the
    gradient of the summed output with respect to the input (``kind``: ``"loop"`` or ``"captum"``)."""

    def __init__(self, net: torch.nn.Module, shape, kind: str):
        self.model, self.shape, self.kind = copy.deepcopy(net).eval(), shape, kind
        self.plan = _init.plan(self.model)

    def initialise(self, seed: int) -> torch.nn.Module:
        """A torchvision model: its builder run under the seed (``torch.manual_seed(s); resnet18(weights=None)``);
        a spec net: every layer's ``reset_parameters`` under the seed, in place (what its constructor runs).
        Both bit-identical to edgewise's draws (tests/test_own_init.py)."""
        if self.plan.method == "builder":
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                return _init._build(self.plan.builder).eval()
        _init.apply(self.model, self.plan, seed)
        return self.model

    def gradient(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "loop":
            x = x.clone().requires_grad_(True)
            model.zero_grad(set_to_none=True)
            model(x).sum().backward()
            return x.grad
        from captum.attr import Saliency

        x = x.clone().requires_grad_(True)  # (captum warns when it has to set this itself)
        return Saliency(lambda inp: model(inp).flatten(1).sum(1)).attribute(x, abs=True)

    def __call__(self, seeds) -> np.ndarray:
        total = torch.zeros(self.shape[1:], dtype=torch.float64)
        for seed in seeds:
            model = self.initialise(seed)
            x, _ = S._init_inputs(seed, self.shape, 1, None)
            g = self.gradient(model, x.float())
            total += (g.double() ** 2).mean(dim=(0, 1))
        return (total / len(seeds)).numpy()


def matmul_rate(n: int = 2048) -> float:
    """float32 FLOP/s of one large matrix product (the machine's practical peak at this thread count)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t = time.perf_counter()
    for _ in range(3):
        a @ b
    return 3 * 2 * n ** 3 / (time.perf_counter() - t)


def draw_time(initialise, seeds) -> float:
    """Seconds that ``initialise(seed)`` takes for every seed (the weights alone)."""
    t = time.perf_counter()
    for s in seeds:
        initialise(s)
    return time.perf_counter() - t


def bench(name: str, repeats: int, rate: float, bf16: bool = False) -> dict:
    cfg = CONFIGS[name]
    net, shape, n = build(name), cfg["shape"], cfg["n_inits"]
    seeds = S._init_seeds(0, n)
    acts, flops = limits.forward_cost(net, shape)
    runs = {
        "edgewise": lambda: S.init_sensitivity(net, shape, n_inits=n, seed=0).map,
        "edgewise vmap": lambda: S.init_sensitivity(net, shape, n_inits=n, seed=0, chunk=8).map,
        "loop": lambda r=Baseline(net, shape, "loop"): r(seeds),
        "captum": lambda r=Baseline(net, shape, "captum"): r(seeds),
    }
    if bf16:  # information only: a different, less precise map
        runs["edgewise bf16"] = lambda: S.init_sensitivity(net, shape, n_inits=n, seed=0, dtype=torch.bfloat16).map
    times = {k: [] for k in runs}
    maps = {k: f() for k, f in runs.items()}  # warm-up, and the maps compared
    for _ in range(repeats):
        for k, f in runs.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    ref = maps["loop"]
    diff = {k: float(np.abs(m - ref).max() / np.abs(ref).max()) for k, m in maps.items()}
    bf16_diff = diff.pop("edgewise bf16", None)
    mine = build(name)
    plan = _init.plan(mine)
    draws = draw_time(lambda s: _init.apply(mine, plan, s), seeds)
    user_draws = draw_time(Baseline(net, shape, "loop").initialise, seeds)
    floor = 2 * flops * n / rate + draws
    return {"model": cfg["model"], "shape": list(shape), "n_inits": n, "width": cfg.get("width"),
            "engine": S.engine(flops, acts), "forward_flops": flops, "seconds": med, "all_seconds": times,
            "channels_last": S.engine(flops, acts) == "loop" and S.runs_channels_last(net, shape, flops),
            "ratio_loop": med["loop"] / med["edgewise"], "ratio_captum": med["captum"] / med["edgewise"],
            "rel_diff": diff, "bf16_rel_diff": bf16_diff, "weight_draws_s": draws, "user_weight_draws_s": user_draws,
            "floor_s": floor}


def report(r: dict) -> None:
    med = r["seconds"]
    print(f"{r['model']} {'x'.join(map(str, r['shape']))}{'' if r['width'] is None else ', width ' + str(r['width'])},"
          f" N = {r['n_inits']}, engine {r['engine']}{' (channels-last)' if r['channels_last'] else ''},"
          f" forward {r['forward_flops'] / 1e9:.2f} GFLOP")
    for k, t in med.items():
        diff = r["rel_diff"].get(k, r["bf16_rel_diff"])
        note = "" if k in r["rel_diff"] else " (not checked)"
        print(f"  {k:14s} {t:7.3f} s (min {min(r['all_seconds'][k]):6.3f} s)   max rel. diff to loop {diff:.1e}{note}")
    for base in ("loop", "captum"):
        ratio = r[f"ratio_{base}"]
        met = "met" if ratio >= GOAL_RATIO else "NOT met"
        fastest = min(r["all_seconds"][base]) / min(r["all_seconds"]["edgewise"])
        print(f"  {base}/edgewise {ratio:5.2f}x (of the fastest repeats {fastest:4.2f}x)  "
              f"(goal >= {GOAL_RATIO:g}x: {met})")
    print(f"  weights: edgewise draws them in {r['weight_draws_s']:.3f} s, the user's constructor in "
          f"{r['user_weight_draws_s']:.3f} s (the same numbers)")
    print(f"  floor: edgewise's draws + forward & input gradient at the matmul rate = {r['floor_s']:.3f} s "
          f"(edgewise's time is {med['edgewise'] / r['floor_s']:.2f}x the floor)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="resnet18,spec")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bf16", action="store_true",
                    help="also time edgewise in bfloat16 (its map deviates; not checked)")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    import captum

    print(machine_line(f"captum {captum.__version__}"))
    rate = matmul_rate()
    print(f"float32 matrix product: {rate / 1e9:.0f} GFLOP/s")
    results = []
    for name in args.models.split(","):
        results.append(bench(name.strip(), args.repeats, rate, args.bf16))
        report(results[-1])
    ok = all(d < RTOL for r in results for d in r["rel_diff"].values())
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "threads": torch.get_num_threads(), "matmul_flops": rate,
                       "goal_ratio": GOAL_RATIO, "results": results}, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
