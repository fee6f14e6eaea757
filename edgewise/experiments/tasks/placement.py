"""Where a pattern goes on a canvas, how far it then lies from the border, and the run both border tasks share.

A *placement* names where a patch (a digit, a signal) is pasted on a larger zero canvas:

========== ==== ================================================================================
name       axes where the patch's first corner goes
========== ==== ================================================================================
center     2-D  the middle of the canvas (``(room) // 2`` on every axis)
edge       2-D  touching one side (top, bottom, left or right, drawn per sample), centred along it
corner     2-D  touching two sides: one of the four corners, drawn per sample
start      1-D  touching the first sample
middle     1-D  the middle of the sequence
end        1-D  touching the last sample
everywhere both uniformly random over every position where the patch fits
========== ==== ================================================================================

``room = canvas − patch`` per axis. The *distance to the border* of a placed patch is the number of
canvas pixels (samples) between its bounding box and the nearest side: 0 when it touches a side, at most
``min(room) // 2`` at the centre. The tasks' accuracy-by-distance curve puts every test pattern at every
distance in turn (:func:`at_distance`: a uniformly random spot among those at exactly that distance), so each
distance is scored on the same patterns and with as many of them; uniformly random spots would crowd the small
distances (in 2-D a ring near the sides holds far more spots than one near the centre).

Every draw comes from the caller's ``numpy.random.Generator``, never numpy's global state.
"""

from __future__ import annotations

import functools
import itertools
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from ...errors import EdgewiseError
from ..data import paste
from ..train import accuracy, train_model

__all__ = ["PLACEMENTS_2D", "PLACEMENTS_1D", "check_choice", "room", "max_distance", "corners", "distance",
           "at_distance", "place", "placed_data", "run_placed"]

#: placements of a 2-D patch: the three test splits of border-digits and the uniformly random one
PLACEMENTS_2D = ("center", "edge", "corner", "everywhere")
#: placements of a 1-D signal: the three test splits of border-1d and the uniformly random one
PLACEMENTS_1D = ("start", "middle", "end", "everywhere")


def check_choice(what: str, value, valid: Iterable[str]) -> str:
    """``value`` if it is one of ``valid``, else an EdgewiseError that lists them."""
    valid = tuple(valid)
    if value not in valid:
        raise EdgewiseError(f"unknown {what} {value!r}; valid: {', '.join(valid)}")
    return value


def room(patch, canvas) -> tuple[int, ...]:
    """``canvas − patch`` per axis: how far the patch's first corner can move (an error if it does not fit)."""
    patch, canvas = tuple(int(p) for p in patch), tuple(int(c) for c in canvas)
    if len(patch) != len(canvas):
        raise EdgewiseError(f"a {len(patch)}-D patch {patch} cannot go on a {len(canvas)}-D canvas {canvas}")
    if any(p > c for p, c in zip(patch, canvas)):
        raise EdgewiseError(f"a patch of {patch} does not fit on a canvas of {canvas}; enlarge the canvas")
    return tuple(c - p for p, c in zip(patch, canvas))


def max_distance(patch, canvas) -> int:
    """The largest distance to the border a placed patch can have (the centre's)."""
    return min(room(patch, canvas)) // 2


def corners(placement: str, patch, canvas, n: int, rng: np.random.Generator, jitter: int = 0) -> np.ndarray:
    """First corners (n, ndim) of ``n`` patches placed at ``placement`` (see the module table), each moved by up
    to ``jitter`` pixels per axis (uniformly, then clipped to the canvas, so a patch at a side stays there or
    moves inwards; ``everywhere`` ignores it)."""
    free = np.array(room(patch, canvas))
    ndim = len(free)
    check_choice("placement", placement, PLACEMENTS_2D if ndim == 2 else PLACEMENTS_1D)
    if jitter < 0:
        raise EdgewiseError(f"jitter is a number of pixels (samples) and must be at least 0, got {jitter}")
    mid = free // 2
    out = np.tile(mid, (n, 1))
    if placement == "everywhere":
        out = np.stack([rng.integers(0, f + 1, size=n) for f in free], axis=1)
    elif placement in ("start", "end"):
        out[:, 0] = 0 if placement == "start" else free[0]
    elif placement == "edge":
        # side s: axis s // 2, low end (0) when s is even, high end (room) when odd; the other axis stays centred
        side = rng.integers(0, 2 * ndim, size=n)
        axis, high = side // 2, side % 2
        out[np.arange(n), axis] = high * free[axis]
    elif placement == "corner":
        out = rng.integers(0, 2, size=(n, ndim)) * free
    if jitter and placement != "everywhere":
        out = np.clip(out + rng.integers(-int(jitter), int(jitter) + 1, size=out.shape), 0, free)
    return out.astype(np.int64)


def distance(corner, patch, canvas) -> np.ndarray:
    """Distance (pixels/samples) from each placed patch's box to the nearest side of the canvas: (n,) ints."""
    free = np.array(room(patch, canvas))
    c = np.asarray(corner, dtype=np.int64).reshape(-1, len(free))
    return np.minimum(c, free - c).min(axis=1)


@functools.lru_cache(maxsize=16)
def _by_distance(free: tuple[int, ...]) -> dict[int, np.ndarray]:
    """distance → every first corner at exactly that distance, for a canvas with ``free`` room per axis."""
    grid = np.array(list(itertools.product(*(range(f + 1) for f in free))), dtype=np.int64)
    d = np.minimum(grid, np.array(free) - grid).min(axis=1)
    return {int(k): grid[d == k] for k in np.unique(d)}


def at_distance(dist, patch, canvas, rng: np.random.Generator) -> np.ndarray:
    """First corners (n, ndim): patch ``i`` at exactly ``dist[i]`` from the border, uniformly among such spots."""
    groups = _by_distance(room(patch, canvas))
    dist = np.asarray(dist, dtype=np.int64)
    bad = sorted(set(dist.tolist()) - set(groups))
    if bad:
        raise EdgewiseError(f"no spot for a {tuple(patch)} patch on a {tuple(canvas)} canvas lies at distance "
                            f"{bad[0]} from the border; distances run 0–{max(groups)}")
    out = np.empty((len(dist), len(room(patch, canvas))), dtype=np.int64)
    for d in np.unique(dist):
        where = np.flatnonzero(dist == d)
        out[where] = groups[int(d)][rng.integers(0, len(groups[int(d)]), size=len(where))]
    return out


def place(patches: torch.Tensor, corner, canvas, noise: float = 0.0, rng: np.random.Generator | None = None):
    """Canvases (N, C, *canvas): ``patches`` (N, C, *p) pasted at ``corner`` on zeros, plus Gaussian noise of
    standard deviation ``noise`` over the whole canvas (pattern included, like a recording's hiss)."""
    x = paste(patches, canvas, corner)
    if noise:
        if rng is None:
            raise EdgewiseError("place: noise needs a random generator")
        x = x + torch.from_numpy(rng.normal(0.0, noise, size=tuple(x.shape)).astype(np.float32))
    return x


def placed_data(x: torch.Tensor, y: torch.Tensor, patch, canvas, splits, *, n_train: int, n_test: int,
                train_at: str, jitter: int, noise: float, data_seed: int):
    """A placement task's data from source patterns ``x`` (N, C, *patch) and labels ``y``.

    Returns ``(train, tests, by_distance)``: ``train`` = (x, y) at ``train_at`` (jittered), ``tests`` = split →
    (x, y) for every placement in ``splits``, and ``by_distance()`` yielding ``(distance, x, y)``: every test
    pattern at each distance from the border in turn (built lazily; each distance has its own noise stream, so
    the curve is reproducible). Train and test patterns are disjoint; everything comes from ``data_seed``.
    """
    rng = np.random.default_rng(data_seed)
    order = rng.permutation(len(x))  # sources may be sorted by label: shuffle before splitting
    tr, te = torch.from_numpy(order[:n_train]), torch.from_numpy(order[n_train:n_train + n_test])
    train = (place(x[tr], corners(train_at, patch, canvas, n_train, rng, jitter), canvas, noise, rng), y[tr])
    tests = {s: (place(x[te], corners(s, patch, canvas, n_test, rng), canvas, noise, rng), y[te]) for s in splits}
    dists = np.arange(max_distance(patch, canvas) + 1)
    spots = at_distance(np.repeat(dists, n_test), patch, canvas, rng).reshape(len(dists), n_test, len(canvas))
    xt, yt = x[te], y[te]

    def by_distance():
        for d, spot in zip(dists, spots):
            yield int(d), place(xt, spot, canvas, noise, np.random.default_rng([data_seed, 1, int(d)])), yt

    return train, tests, by_distance


def _accuracy_by_distance(model, batches) -> tuple[list[int], list[float], list[int]]:
    """(distances, accuracy at each, samples at each) over ``(distance, x, y)`` batches; ``model`` in eval mode."""
    right: dict[int, int] = {}
    total: dict[int, int] = {}
    for d, x, y in batches:
        hits = 0
        with torch.no_grad():
            for i in range(0, len(x), 512):
                hits += int((model(x[i:i + 512]).argmax(1) == y[i:i + 512]).sum())
        right[d] = right.get(d, 0) + hits
        total[d] = total.get(d, 0) + len(x)
    ds = sorted(total)
    return ds, [right[d] / total[d] for d in ds], [total[d] for d in ds]


def run_placed(config: dict, remedy: str, seed: int, train: tuple, tests: dict[str, tuple], by_distance,
               input_shape, progress=None, checkpoint: Path | None = None, unit: str = "px") -> dict:
    """Train the task's net for ``remedy`` on ``train`` and score it on every split and by distance.

    Args:
        by_distance: a callable returning an iterable of ``(distance, x, y)`` batches (built lazily, since the
            curve's test set is the test pool repeated at every distance and need not sit in memory at once).
        unit: what distances count (``px`` or ``samples``), recorded for the figure's axis.

    Returns:
        ``accuracy`` (split → fraction), ``train_accuracy``, ``loss`` per epoch, ``by_distance``
        ({``distance``, ``accuracy``, ``n`` lists, ``unit``) and ``chance`` (0.1: ten classes).
    """
    model, losses = train_model(config, remedy, seed, train, input_shape, progress, checkpoint)
    dists, accs, ns = _accuracy_by_distance(model, by_distance())
    return {"accuracy": {split: accuracy(model, *data) for split, data in tests.items()},
            "train_accuracy": accuracy(model, *train), "loss": losses,
            "by_distance": {"distance": dists, "accuracy": accs, "n": ns, "unit": unit}, "chance": 0.1}
