"""``symmetry``: why the feature maps of a layer learn different filters (symmetry breaking).

The same small CNN learns 10-class digit recognition twice: once from a *constant* initialisation (every
weight of a layer the same value) and once from PyTorch's default *random* one. If the filters of a layer start
equal, and so does every weight that reads their feature maps, then the maps are equal, so are the gradients
that reach the filters, so is Adam's update (it acts on each weight alone): they stay equal at every step. A
constant net keeps one distinct filter per layer however wide it is, and learns like a net of width 1; random
initial weights are what let filters specialise. (The output layer is not stuck: each class has its own label,
so its rows differ after the first step.)

At every optimiser step the run records, for each conv layer, how alike its filters are (pairwise cosine
similarity: mean, min, max; the largest elementwise difference between two filters) and the same for their
gradients. Under the constant init the differences stay exactly 0, not merely tiny: every output channel is
computed by the same kernel code from the same numbers in the same order, so even the rounding is identical
(checked on CPU, with oneDNN and without, 1 and 2 threads, widths 5 to 64). A kernel that summed some channels
in another order would break the tie by rounding; a tie broken by ~1e-7 grows (here to ~1e-4 over 320 steps)
but stays far too small to change the accuracy in these budgets.

Two consequences worth knowing:
    * symmetry is broken layer by layer. Nudging one filter of ``conv1`` leaves the filters of ``conv2`` exactly
      equal: they read the now different maps of ``conv1`` with identical weights, so they still agree.
    * a constant net is fragile. Its features are all positive and alike, so Adam's first steps, which move
      every weight by about ``lr``, move all the logits together by about ``lr`` times the sum of the features;
      at a large ``lr`` or width the one filter per layer can be pushed to all-negative weights, every ReLU
      dies and the loss stays at log 10 (the shipped sizes train; the loss curve shows when this happens).

Config keys:
    source: ``"sklearn"`` (8×8 digits) or ``"mnist"`` (28×28), pixels scaled to [0, 1].
    model, width, bias: the spec net (:func:`edgewise.nets.from_spec`, zero 'same' padding, ReLU).
    constant: the constant init sets every weight of a conv or linear layer to ``constant / sqrt(3 · fan_in)``
        (1.0: the root-mean-square of PyTorch's default init, uniform in ±1/sqrt(fan_in)) and every bias to 0.
    epochs, batch_size, lr: Adam training (:func:`edgewise.experiments.train.fit`).
    n_train, n_test: disjoint digits for training and testing.
    data_seed: seeds the choice of digits.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn as nn

from ...errors import EdgewiseError
from .. import data
from ..train import accuracy, build_model, fit
from ._base import Task
from .placement import check_choice

__all__ = ["TASK", "run_one", "make_data", "INITS", "CURVES", "similarity", "init_constant", "conv_layers"]

#: the initialisations this task compares (its ``remedies`` axis)
INITS = {
    "constant": "every weight of a layer the same value (biases 0): all filters of a layer start identical",
    "random": "PyTorch's default init drawn from the run's seed",
}

#: per-layer curves recorded at every step, in the order figures and tables list them
CURVES = ("filter_cos_mean", "filter_cos_min", "filter_cos_max", "filter_max_diff",
          "grad_cos_mean", "grad_cos_min", "grad_max_diff")

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@functools.lru_cache(maxsize=4)
def _make(source: str, n_train: int, n_test: int, data_seed: int):
    load, top = data.DIGIT_SOURCES[source]
    images, labels = load()
    if n_train + n_test > len(images):
        raise EdgewiseError(f"symmetry: n_train + n_test = {n_train + n_test} but the {source} source has only "
                            f"{len(images)} digits")
    order = np.random.default_rng(data_seed).permutation(len(images))  # the sources are sorted by label
    x = torch.from_numpy(images.astype(np.float32) / top)[:, None]
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    tr, te = torch.from_numpy(order[:n_train]), torch.from_numpy(order[n_train:n_train + n_test])
    return (x[tr].contiguous(), y[tr]), (x[te].contiguous(), y[te])


def make_data(config: dict):
    """``(train, test)``, each ``(x, y)`` with x (N, 1, H, W) in [0, 1]; deterministic and cached per config."""
    source = check_choice("source", config["source"], data.DIGIT_SOURCES)
    return _make(source, int(config["n_train"]), int(config["n_test"]), int(config["data_seed"]))


def init_constant(model: nn.Module, constant: float) -> nn.Module:
    """Set every weight of each conv/linear layer to ``constant / sqrt(3 · fan_in)`` and every bias to 0."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (*_CONV, nn.Linear)):
                # 1/sqrt(3·fan_in) is the std of PyTorch's default U(±1/sqrt(fan_in)): the same weight scale
                m.weight.fill_(constant / math.sqrt(3 * m.weight[0].numel()))
                if m.bias is not None:
                    m.bias.zero_()
    return model


def conv_layers(model: nn.Module) -> dict[str, nn.Module]:
    """name → conv module, in network order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, _CONV)}


def similarity(w) -> dict[str, float]:
    """How alike the filters ``w[0], w[1], …`` are: ``cos_mean/min/max`` over distinct pairs and ``max_diff``,
    the largest elementwise |w_i − w_j| over all pairs (exactly 0 when all filters are identical).

    ``w``: a tensor or array whose first axis indexes the filters.
    """
    # numpy in float64: tiny arrays (no thread start-up per op, which dominated with torch), and identical
    # filters give a cosine of exactly 1.0 rather than 1 ± 1 ulp of float32
    flat = np.asarray(w.detach().cpu() if isinstance(w, torch.Tensor) else w, dtype=np.float64).reshape(len(w), -1)
    # the largest pairwise L∞ distance is the largest per-entry spread across the filters
    diff = float(np.ptp(flat, axis=0).max()) if len(flat) > 1 else 0.0
    if len(flat) < 2:
        return {"cos_mean": 1.0, "cos_min": 1.0, "cos_max": 1.0, "max_diff": diff}
    norm = np.linalg.norm(flat, axis=1, keepdims=True)
    unit = np.divide(flat, norm, out=np.zeros_like(flat), where=norm > 0)
    cos = np.clip(unit @ unit.T, -1.0, 1.0)
    # a zero vector has no direction: two zero vectors are identical (cos 1, as max_diff 0 says), a zero and
    # a non-zero one unrelated (cos 0). Zero gradients are common: a net whose ReLUs all died gets only zeros
    zero = norm[:, 0] == 0
    cos[np.outer(zero, zero)] = 1.0
    cos = cos[~np.eye(len(flat), dtype=bool)]
    return {"cos_mean": float(cos.mean()), "cos_min": float(cos.min()), "cos_max": float(cos.max()), "max_diff": diff}


def _record(model: nn.Module, step: int, state: dict) -> None:
    """``on_step``: append this step's filter and gradient similarity of every conv layer to ``state``.

    Called after the backward pass and before the update, so the filters are the ones this step's batch saw
    and the gradients are what Adam is about to use. ``state`` stays flat ("layer/curve" → list) because it
    is saved in the checkpoint."""
    for name, conv in conv_layers(model).items():
        for kind, t in (("filter", conv.weight), ("grad", conv.weight.grad)):
            if t is None:  # a layer the loss does not reach
                continue
            for key, value in similarity(t).items():
                if f"{kind}_{key}" in CURVES:
                    state.setdefault(f"{name}/{kind}_{key}", []).append(value)


def _distinct(w: torch.Tensor) -> int:
    """The number of bitwise-different filters in ``w``."""
    return len(torch.unique(w.detach().reshape(len(w), -1), dim=0))


def run_one(config: dict, init: str, seed: int, progress=None, checkpoint=None) -> dict:
    """Train ``config['model']`` from the ``init`` initialisation and record its filters' similarity per step.

    Returns JSON metrics: ``accuracy`` {"test": fraction}, ``train_accuracy``, ``loss`` (per epoch), ``chance``,
    ``similarity`` {conv layer: {curve: [one value per step]}} with the curves of :data:`CURVES`, ``final``
    {conv layer: the same measures of the trained filters plus ``distinct_filters``} and ``filters``
    {"layer": first conv layer, "weights": its trained weights as nested lists (out, in, *kernel)}.
    """
    init = check_choice("init", init, INITS)
    (xtr, ytr), (xte, yte) = make_data(config)
    model = build_model(config, "same", tuple(xtr.shape[1:]), seed)
    if init == "constant":
        init_constant(model, float(config["constant"]))
    state: dict[str, list[float]] = {}
    losses = fit(model, xtr, ytr, epochs=config["epochs"], batch_size=config["batch_size"], lr=config["lr"],
                 seed=seed, progress=progress, on_step=_record, state=state, checkpoint=checkpoint)
    convs = conv_layers(model)
    curves = {name: {c: state[f"{name}/{c}"] for c in CURVES if f"{name}/{c}" in state} for name in convs}
    final = {}
    for name, conv in convs.items():
        final[name] = {f"filter_{k}": v for k, v in similarity(conv.weight).items()}
        final[name]["distinct_filters"] = _distinct(conv.weight)
        final[name]["filters"] = len(conv.weight)
    first = next(iter(convs), None)
    return {
        "accuracy": {"test": accuracy(model, xte, yte)},
        "train_accuracy": accuracy(model, xtr, ytr),
        "loss": losses,
        "chance": 0.1,
        "similarity": curves,
        "final": final,
        "filters": {"layer": first, "weights": convs[first].weight.detach().tolist() if first else []},
    }


def notes(runs: list[dict]) -> list[str]:
    """Per init: the largest difference between two filters (and two gradients) of a layer at any step, and how
    alike and how many distinct the trained filters are."""
    lines = []
    for init in INITS:
        mine = [r["metrics"] for r in runs if r["remedy"] == init]
        if not mine:
            continue
        curves = [c for m in mine for c in m["similarity"].values()]
        finals = [f for m in mine for f in m["final"].values()]
        w = max(max(c["filter_max_diff"]) for c in curves)
        g = max(max(c["grad_max_diff"]) for c in curves)
        cos = float(np.mean([f["filter_cos_mean"] for f in finals]))
        low, high = min(f["distinct_filters"] for f in finals), max(f["distinct_filters"] for f in finals)
        distinct = str(low) if low == high else f"{low}–{high}"
        lines.append(f"{init}: largest difference between two filters of a layer at any step {w:.3g}, between "
                     f"their gradients {g:.3g}; trained filters: mean pairwise cosine {cos:.3f}, {distinct} "
                     f"distinct per layer of {finals[0]['filters']} ({len(mine)} seed{'s' * (len(mine) != 1)})")
    return lines


TASK = Task(
    name="symmetry",
    summary="The same small CNN learns 10-class digits from a constant initialisation (all filters of a layer "
            "identical) and from a random one; every step records how alike each layer's filters and their "
            "gradients are.",
    prediction="Identical filters get identical gradients and identical Adam updates, so under the constant "
               "init they stay exactly identical (one effective filter per layer) and the net learns worse; "
               "random filters diverge and specialise.",
    sizes={
        "quick": {"source": "sklearn", "model": "conv3, maxpool2, conv3, fc10", "width": 8, "bias": False,
                  "constant": 1.0, "epochs": 10, "batch_size": 32, "lr": 0.003, "n_train": 1000, "n_test": 500,
                  "data_seed": 0},
        "full": {"source": "mnist", "model": "conv3, maxpool2, conv3, maxpool2, conv3, maxpool2, fc10", "width": 16,
                 "bias": False, "constant": 1.0, "epochs": 20, "batch_size": 64, "lr": 0.001, "n_train": 4000,
                 "n_test": 1000, "data_seed": 0},
    },
    run_one=run_one,
    remedies=tuple(INITS),
    splits={"test": "held-out digits (same source, never trained on)"},
    axis="init",
    notes=notes,
)
