"""``border-distance``: how far from the border can a CNN still tell where a pattern is?

After Kayhan & van Gemert (CVPR 2020), whose 4-Quadrant ImageNet experiment puts the same image patch in the
top-left or the bottom-right of a black canvas (the two classes) and pushes it away from the border by a growing
black margin, until a network with a bounded receptive field (BagNet-33) falls to chance.

Here the pattern is a real handwritten digit (random identity, cut to its ink's bounding box). Class 0 puts it
``b`` blank pixels from the top and the left side of a zero canvas, class 1 ``b`` pixels from the bottom and the
right side: ``b`` is the number of blank pixels between the ink's box and the nearest sides, and the two images
of one digit are translates of each other. One network per remedy and seed learns every ``b`` from 0 to
:data:`MAX_DISTANCE` mixed; each test split ``b=K`` holds every test digit at *both* placements at distance K
(paired), so a net that gives the two placements the same output scores exactly 50 %.

The exact threshold (bias-free, stride-1 nets with a global pool, zero background):
    Without bias, with ReLU(0) = 0 and a zero background, the response of every layer to a digit on an
    unbounded plane is zero outside the digit's box widened by that layer's receptive field. A zero-padded layer
    writes zeros exactly where that response would be zero, so nothing is lost as long as the response stays on
    the layers' grids; the global pool then sums (or maximises over) the same numbers for both placements, and
    a stride-1 net is equivariant to the shift between them: identical outputs. The response reaches the grid
    row just outside the first unit (row −1) exactly when the digit's first row ``b`` lies in that unit's field,
    i.e. ``b ≤ hi − 1`` with ``hi`` the last input row read by the corner unit of the last convolution. So the
    outputs are identical for every ``b ≥ b* = hi`` (both corners, both axes), and ``b*`` comes from
    :func:`edgewise.receptive_field` of the built net, with ``L`` its field's size. With an average pool the
    bound is sharp (whatever is cut off changes the sum); with a max pool (the default, as in the paper) the
    outputs may already agree closer in, where the cut-off part holds no channel's maximum:

    * ``valid`` (no padding): the corner unit reads rows 0 … L − 1, so ``b* = L − 1``. This is the bound
      "no unit whose field holds a digit pixel also holds a padded (or missing) position": a pixel closer than
      L − 1 to the side is read by fewer units than in the interior.
    * ``same`` (zero padding (k − 1)/2 per side): the field is centred on the unit, ``b* = (L − 1)/2``. A unit
      may well read both the digit and the padding at b*, but the padding then holds zeros where the unbounded
      response would be zero anyway.
    * ``full`` (zero padding k − 1 per side): the corner unit reads rows −(L − 1) … 0: ``b* = 0``, never
      distinguishable. ``circular`` (a torus: the placements are shifts of one another): ``b* = 0`` too.

    The issue's "b ≥ L" is therefore sufficient but never sharp: every zero-padding scheme has ``b* ≤ L − 1``,
    reached by valid padding. With a bias the background is no longer zero after the first layer, so zero
    padding differs from it and the border's effect spreads inwards; b ≥ L − 1 then still suffices for same
    and valid padding (the border's and the digit's effects never meet), but no exact threshold is predicted,
    and full padding is no longer invariant. Reflect padding and partial convolutions copy or rescale values at
    the border, so their outputs agree only farther in (b ≥ 4 against zero padding's 3 for the quick net at
    initialisation); CoordConv reads coordinates and can tell the corners apart at every distance.

Each run also measures where the trained net's outputs for the paired placements become identical
(:data:`TOLERANCE` relative to the largest logit), checking the threshold on the trained weights themselves.

Differences from the paper: it trains one network per margin; here one net learns every distance, and the
accuracy per distance shows where the corners stop being separable. Like the paper's nets, the default net pools
globally by maximum (an average pool gives the same threshold but trains far slower on a mostly blank canvas).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from ...errors import EdgewiseError
from .. import data
from ..train import accuracy, build_model, fit
from ._base import Progress, Task

__all__ = ["TASK", "MAX_DISTANCE", "TOLERANCE", "run_one", "make_data", "paired", "ink", "geometry",
           "predicted_threshold", "output_gap", "exact_from"]

#: the largest distance trained and tested: L + 3 for the quick net (L = 7), L + 1 for the full one (L = 9); fixed,
#: so that every run's table has the same columns
MAX_DISTANCE = 10
#: outputs of the two placements count as identical when no logit differs by more than this fraction of the
#: largest logit (float32 rounding of sums taken in another order stays far below it)
TOLERANCE = 1e-5
#: remedies whose threshold the receptive field gives (zero padding, every layer alike)
_ZERO_PADDING = ("same", "valid", "full")

SPLITS = {f"b={b}": f"the test digits {b} px from the sides, each at both corners" for b in range(MAX_DISTANCE + 1)}


# ------------------------------------------------------------------------------------------------------ data

def ink(pattern: torch.Tensor) -> torch.Tensor:
    """``pattern`` (C, h, w) cut to the bounding box of its non-zero pixels (an error when it has none)."""
    rows = torch.nonzero(pattern.abs().sum(dim=(0, 2))).flatten()
    cols = torch.nonzero(pattern.abs().sum(dim=(0, 1))).flatten()
    if not len(rows):
        raise EdgewiseError("border-distance: a pattern has no non-zero pixel, so it has no distance to the border; "
                            "use a digit source with ink in every image")
    return pattern[:, int(rows[0]):int(rows[-1]) + 1, int(cols[0]):int(cols[-1]) + 1]


def paired(patterns: list[torch.Tensor], distance, canvas: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each of ``patterns`` (ink boxes, (C, h, w)) on a zero ``canvas`` × ``canvas`` twice: ``distance[i]`` px from
    the top and left sides (label 0, the first half) and from the bottom and right sides (label 1)."""
    distance = np.broadcast_to(np.asarray(distance, dtype=np.int64), (len(patterns),))
    n, c = len(patterns), patterns[0].shape[0]
    x = torch.zeros(2 * n, c, canvas, canvas)
    for i, (p, b) in enumerate(zip(patterns, distance.tolist())):
        h, w = p.shape[1:]
        if b < 0 or 2 * b + max(h, w) > canvas:
            raise EdgewiseError(f"border-distance: a {h}×{w} pattern {b} px from both corners does not fit a "
                                f"{canvas}-px canvas")
        x[i, :, b:b + h, b:b + w] = p
        x[n + i, :, canvas - b - h:canvas - b, canvas - b - w:canvas - b] = p
    return x, torch.cat([torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long)])


@functools.lru_cache(maxsize=4)
def _make(source: str, patch: int, canvas: int, n_train: int, n_test: int, data_seed: int):
    x, _ = data.digit_images(source, patch, crop=True)
    if n_train + n_test > len(x):
        raise EdgewiseError(f"border-distance: n_train + n_test = {n_train + n_test} but the {source} source has only "
                            f"{len(x)} digits; lower them")
    rng = np.random.default_rng(data_seed)
    order = rng.permutation(len(x))
    train_inks = [ink(x[i]) for i in order[:n_train]]
    test_inks = [ink(x[i]) for i in order[n_train:n_train + n_test]]
    train = paired(train_inks, rng.integers(0, MAX_DISTANCE + 1, n_train), canvas)
    tests = {f"b={b}": paired(test_inks, b, canvas) for b in range(MAX_DISTANCE + 1)}
    return train, tests, (int(x.shape[1]), canvas, canvas)


def make_data(config: dict):
    """``(train, {"b=0": …, …}, input_shape)`` for ``config``: each part an (x, y) pair of tensors, every digit at
    both placements. Training digits sit at a uniformly random distance 0 … MAX_DISTANCE (one per digit), test
    digits (disjoint from them) at every distance. Cached per data configuration (treat as read-only)."""
    source = config["source"]
    if source not in data.DIGIT_SOURCES:
        raise EdgewiseError(f"border-distance: unknown source {source!r}; valid: {', '.join(data.DIGIT_SOURCES)}")
    patch, canvas = int(config["patch"]), int(config["canvas"])
    need = patch + 2 * MAX_DISTANCE + 1
    if canvas < need:
        raise EdgewiseError(f"border-distance: canvas={canvas} is too small for a {patch}-px digit at up to "
                            f"{MAX_DISTANCE} px from both corners (each placement must stay nearer its own corner); "
                            f"give e.g. --set canvas={need}")
    return _make(source, patch, canvas, int(config["n_train"]), int(config["n_test"]), int(config["data_seed"]))


# ------------------------------------------------------------------------------------------------- geometry

def geometry(model: torch.nn.Module, input_shape) -> tuple[object, object]:
    """``(receptive field, the last layer with positions)`` of ``model``, after checking that the exact threshold
    can apply to it: every layer before the global pool has stride 1, and a global pool (not a Linear layer
    reading every position) removes the positions."""
    from ... import receptive_field

    rf = receptive_field(model, tuple(input_shape))
    grid = rf.grid_layer
    after = rf.layers[rf.layers.index(grid) + 1:]
    pool = next((lf for lf in after if lf.kind not in ("identity", "reshape")), None)
    if pool is None or pool.kind != "pool" or any(n != 1 for n in pool.shape[1:]):
        raise EdgewiseError(f"border-distance: the model must end its convolutions with a global pool (gap or gmp), "
                            f"but {pool.name if pool else 'nothing'} follows {grid.name}; a layer that reads every "
                            f"position can tell the corners apart at any distance. Use e.g. "
                            f"--set model='3*conv3/c16, gmp, fc2'")
    upto = rf.layers[:rf.layers.index(grid) + 1]
    strided = next((lf for lf in upto if lf.spatial and any(a.jump != 1 for a in lf.axes)), None)
    if strided is not None:
        raise EdgewiseError(f"border-distance: layer {strided.name} has stride "
                            f"{'×'.join(f'{float(a.jump):g}' for a in strided.axes)} relative to the input; the exact "
                            f"threshold needs a stride-1 net (a strided net is invariant only to shifts by its "
                            f"stride). Remove the pools and strides before the global pool, e.g. "
                            f"--set model='3*conv3/c16, gmp, fc2'")
    return rf, grid


def predicted_threshold(rf, grid, remedy: str, bias: bool) -> int | None:
    """The smallest distance from which the two placements must give identical outputs (see the module
    docstring), or None where theory gives no exact one (a bias, or a remedy other than zero/circular padding)."""
    if remedy == "circular":
        return 0
    if bias or remedy not in _ZERO_PADDING:
        return None
    first = rf.box(grid.name, (0,) * len(grid.axes))
    last = rf.box(grid.name, tuple(a.n - 1 for a in grid.axes))
    n = rf.input_shape[1:]
    reach = [hi for _, hi in first] + [size - 1 - lo for (lo, _), size in zip(last, n)]
    return max(0, math.ceil(max(reach)))


# -------------------------------------------------------------------------------------------------- testing

@torch.no_grad()
def output_gap(model: torch.nn.Module, x: torch.Tensor) -> float:
    """For a paired split ``x`` (first half: placement 0, second: the same patterns at placement 1): the largest
    logit difference between the two placements of a pattern, relative to the largest logit."""
    n = len(x) // 2
    out = torch.cat([model(x[i:i + 512]) for i in range(0, len(x), 512)])
    scale = out.abs().max().item()
    return (out[:n] - out[n:]).abs().max().item() / scale if scale else 0.0


def exact_from(gaps: list[float], tolerance: float = TOLERANCE) -> int | None:
    """The smallest distance from which every gap is within ``tolerance`` (None when the last one is not)."""
    first = None
    for b in range(len(gaps) - 1, -1, -1):
        if gaps[b] > tolerance:
            break
        first = b
    return first


def run_one(config: dict, remedy: str, seed: int, progress: Progress | None = None, checkpoint=None) -> dict:
    """Train the config's net with ``remedy`` from ``seed`` on every distance mixed; score each distance (paired),
    with the receptive field, the predicted threshold and the gap between the paired outputs."""
    train, tests, shape = make_data(config)
    model = build_model(config, remedy, shape, seed)
    rf, grid = geometry(model, shape)
    threshold = predicted_threshold(rf, grid, remedy, bool(config["bias"]))
    losses = fit(model, *train, epochs=config["epochs"], batch_size=config["batch_size"], lr=config["lr"],
                 seed=seed, progress=progress, checkpoint=checkpoint)
    model.eval()
    acc = {split: accuracy(model, *xy) for split, xy in tests.items()}
    gaps = [output_gap(model, tests[split][0]) for split in SPLITS]
    return {"accuracy": acc, "train_accuracy": accuracy(model, *train), "loss": losses,
            "by_distance": {"distance": list(range(MAX_DISTANCE + 1)), "accuracy": [acc[s] for s in SPLITS],
                            "n": [len(tests[s][1]) for s in SPLITS], "unit": "px"},
            "chance": 0.5, "field": [int(a.size) for a in grid.axes], "field_layer": grid.name,
            "threshold": threshold, "output_gap": gaps, "exact_from": exact_from(gaps)}


# ---------------------------------------------------------------------------------------------------- notes

def _interval_has(values: list[float], target: float) -> bool:
    from ..results import interval

    mean, half = interval(values)
    return mean == target if math.isnan(half) else mean - half <= target <= mean + half


def _above(values: list[float], target: float) -> bool:
    from ..results import interval

    mean, half = interval(values)
    return mean > target if math.isnan(half) else mean - half > target


def _remedy_note(remedy: str, runs: list[dict]) -> str:
    """One remedy's line: threshold, accuracy below and from it, chance inside the interval, the exact gap."""
    per_b = [[r["metrics"]["accuracy"][s] for r in runs] for s in SPLITS]
    thresholds = {r["metrics"].get("threshold") for r in runs}
    t = thresholds.pop() if len(thresholds) == 1 else None
    mean = lambda rows: 100 * float(np.mean(rows)) if rows else math.nan  # noqa: E731
    exact = [r["metrics"].get("exact_from") for r in runs]
    seen = ("identical paired outputs in no seed" if all(e is None for e in exact) else
            "identical paired outputs from b = " + ", ".join("–" if e is None else str(e) for e in exact)
            + f" (seed{'s' * (len(exact) != 1)} in order)")
    if t is None:
        return (f"{remedy}: no exact threshold predicted; accuracy {min(map(mean, per_b)):.1f}–"
                f"{max(map(mean, per_b)):.1f} % over the distances; {seen}")
    below, at = per_b[:t], per_b[t:]
    chance = sum(_interval_has(v, 0.5) for v in at)
    above = sum(_above(v, 0.5) for v in below)
    low = (f"{mean(below):.1f} % at b < {t} (above chance at {above}/{len(below)} distances), " if below else "")
    inside = "chance inside the 95 % interval" if len(runs) > 1 else "exactly chance (one seed)"
    return (f"{remedy}: predicted threshold b* = {t} px; accuracy {low}{mean(at):.1f} % at b ≥ {t} "
            f"({inside} at {chance}/{len(at)} distances); {seen}")


def notes(runs: list[dict]) -> list[str]:
    """The receptive field, then per remedy the predicted threshold and the accuracy below and from it."""
    done = [r for r in runs if "metrics" in r and "threshold" in r["metrics"]]
    if not done:
        return []
    m = done[0]["metrics"]
    lines = [f"receptive field of the last convolution ({m['field_layer']}): L = {'×'.join(map(str, m['field']))} px; "
             f"distances 0–{MAX_DISTANCE} px; identical = no logit gap above {TOLERANCE:g} of the largest logit"]
    by_remedy: dict[str, list[dict]] = {}
    for r in done:
        by_remedy.setdefault(r["remedy"], []).append(r)
    return lines + [_remedy_note(remedy, rs) for remedy, rs in by_remedy.items()]


#: stride 1 up to a global *max* pool, as the paper's nets: an average pool gives the same exact threshold but trains
#: far slower on a mostly blank canvas (zero padding, seed 0, quick size: 87/71/61 % at b = 0/1/2 against 100 %)
_MODEL = "3*conv3/c16, gmp, fc2"

_QUICK = {
    "source": "sklearn", "patch": 8, "canvas": 8 + 2 * MAX_DISTANCE + 1,
    "model": _MODEL, "width": 16, "bias": False,
    "epochs": 6, "batch_size": 32, "lr": 0.01, "n_train": 500, "n_test": 200, "data_seed": 0,
}

TASK = Task(
    name="border-distance",
    summary="A handwritten digit b px from the top-left corner's sides (class 0) or from the bottom-right corner's "
            f"sides (class 1) of a zero canvas; one stride-1 net learns every b from 0 to {MAX_DISTANCE} and is tested "
            "per b, each test digit at both corners: how far from the border can it still tell where the digit is "
            "(Kayhan & van Gemert 2020)?",
    prediction="Bias-free and stride 1 with a global pool, the two placements give identical outputs (exactly "
               "50 %) once b reaches the last input row the corner unit's receptive field (size L) reads: b* = L − 1 "
               "for valid padding, (L − 1)/2 for zero 'same' padding, 0 for full and circular padding; below b* "
               "valid and zero padding can tell the corners apart. CoordConv reads coordinates at every distance.",
    sizes={
        "quick": _QUICK,
        "full": {**_QUICK, "source": "mnist", "patch": 12, "canvas": 12 + 2 * MAX_DISTANCE + 1,
                 "model": "4*conv3/c32, gmp, fc2", "width": 32, "epochs": 15, "lr": 0.005, "n_train": 2000,
                 "n_test": 500},
    },
    run_one=run_one,
    remedies=("same", "valid", "full", "circular", "coordconv"),
    splits=SPLITS,
    contrast=("b=0", f"b={MAX_DISTANCE}"),
    notes=notes,
    data=make_data,
)
