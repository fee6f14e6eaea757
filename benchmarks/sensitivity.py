"""Benchmark: Monte-Carlo sensitivity over initialisations, vectorised (``torch.func.vmap``) vs a loop.

The issue's configuration: a 16-layer, 32-channel 2-D spec net (``16*conv3``,
same padding, ReLU) at 1×64×64, N = 64 initialisations, ``to="all"``, one
N(0, 1) input per initialisation. Timed in the same run, each the median of
``--repeats`` calls after a warm-up:

* ``edgewise``: :func:`edgewise.sensitivity.init_sensitivity` (vmap over ``--chunk``
  initialisations at a time; the script also sweeps other chunk sizes);
* ``loop``: what one writes without edgewise — for each initialisation a fresh
  copy of the model, re-initialised from its seed, ``x.requires_grad_()``,
  ``out.sum().backward()``, accumulate ``x.grad ** 2`` (weight gradients are
  computed too, as ``backward()`` does by default);
* ``loop (x only)``: the same loop with frozen weights and ``torch.autograd.grad``
  with respect to the input only — the fairest loop.

The loops use the same seeds and inputs, so all three must agree (relative
1e-3 in float32: ReLU gates of units within rounding of zero can flip); the
script exits 1 if they do not. A ``bfloat16`` run is timed too and its
deviation from the float32 map printed (not checked).

Run::

    .venv/bin/python benchmarks/sensitivity.py [--n-inits 64] [--repeats 3] [--threads N] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys

import numpy as np
import torch

from edgewise import nets
from edgewise import sensitivity as S

from _timing import timed  # benchmarks/ is on sys.path when a script here runs

GOAL_RATIO = 3.0
RTOL = 1e-3  # float32 through 16 layers: grouped and plain convolutions round differently




def loop(net, shape, seeds, weights_grad: bool) -> np.ndarray:
    """The plain loop over models (the baseline)."""
    total = torch.zeros(shape[1:], dtype=torch.float64)
    for seed in seeds:
        model = copy.deepcopy(net)
        S._reinit_(model, seed, None)
        model.eval()
        x, _ = S._init_inputs(seed, shape, 1, None)
        x = x.float().requires_grad_(True)
        if weights_grad:
            model(x).sum().backward()
            g = x.grad
        else:
            for p in model.parameters():
                p.requires_grad_(False)
            (g,) = torch.autograd.grad(model(x).sum(), x)
        total += (g.double() ** 2).mean(dim=(0, 1))
    return (total / len(seeds)).numpy()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", default="16*conv3")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--n-inits", type=int, default=64)
    ap.add_argument("--chunk", type=int, default=8)
    ap.add_argument("--sweep", default="1,2,8,16", help="other chunk sizes to time (comma-separated, '' for none)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    shape = (1, args.size, args.size)
    net = nets.from_spec(args.spec, shape, width=args.width)
    seeds = S._init_seeds(0, args.n_inits)

    def vectorised(chunk):
        return lambda: S.init_sensitivity(net, shape, n_inits=args.n_inits, seed=0, chunk=chunk).map

    t_vec, m_vec = timed(vectorised(args.chunk), args.repeats)
    t_loop, m_loop = timed(lambda: loop(net, shape, seeds, True), args.repeats)
    t_xonly, m_xonly = timed(lambda: loop(net, shape, seeds, False), args.repeats)
    t_bf16, m_bf16 = timed(lambda: S.init_sensitivity(net, shape, n_inits=args.n_inits, seed=0, chunk=args.chunk,
                                                      dtype=torch.bfloat16).map, args.repeats)
    bf16_diff = float(np.abs(m_bf16 - m_vec).max() / np.abs(m_vec).max())
    sweep = {}
    for c in [int(c) for c in args.sweep.split(",") if c.strip()]:
        sweep[c] = timed(vectorised(c), args.repeats)[0]
    diff = max(float(np.abs(m_vec - m).max() / np.abs(m).max()) for m in (m_loop, m_xonly))

    print(f"{args.spec}, width {args.width}, input {'x'.join(map(str, shape))}, N = {args.n_inits} "
          f"initialisations, {torch.get_num_threads()} threads, torch {torch.__version__}, {platform.machine()}")
    print(f"  edgewise (vmap, chunk {args.chunk}) {t_vec:8.3f} s")
    print(f"  loop                         {t_loop:8.3f} s   ratio loop/edgewise {t_loop / t_vec:5.2f}x "
          f"(goal >= {GOAL_RATIO:g}x)")
    print(f"  loop (x only)                {t_xonly:8.3f} s   ratio {t_xonly / t_vec:5.2f}x")
    print(f"  edgewise, bfloat16             {t_bf16:8.3f} s   ratio loop/this {t_loop / t_bf16:5.2f}x "
          f"(largest deviation from the float32 map: {bf16_diff:.1%})")
    for c, t in sweep.items():
        print(f"  vmap chunk {c:<3d}                {t:8.3f} s   ratio loop/this {t_loop / t:5.2f}x")
    print(f"  largest relative difference of the maps: {diff:.2e} (must be < {RTOL:g})")
    if args.json:
        doc = {"spec": args.spec, "width": args.width, "shape": shape, "n_inits": args.n_inits,
               "threads": torch.get_num_threads(), "edgewise_s": t_vec, "chunk": args.chunk, "loop_s": t_loop,
               "loop_x_only_s": t_xonly, "ratio": t_loop / t_vec, "ratio_x_only": t_xonly / t_vec,
               "sweep_s": sweep, "rel_diff": diff, "bf16_s": t_bf16, "bf16_ratio": t_loop / t_bf16,
               "bf16_rel_diff": bf16_diff}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
    return 0 if diff < RTOL else 1


if __name__ == "__main__":
    sys.exit(main())
