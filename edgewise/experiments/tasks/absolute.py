"""``absolute-position``: can a CNN read where things are? (after Kayhan & van Gemert, CVPR 2020)

Two variants (config ``variant``):

``red-green`` (default)
    3-channel images on black with a red (channel 0) and a green (channel 1) square at different x, never
    overlapping. Class 0: red is left of green; class 1: green is left of red. In training, class 0 always
    lies in a band near the top and class 1 in a band near the bottom, so "top or bottom" is a shortcut that
    a network able to read absolute position takes instead of the relation. Split ``similar`` is fresh
    images from the training distribution; ``dissimilar`` is the same images with each image's squares
    moved by half the image height (class 0 down, class 1 up), i.e. the bands swapped.

``location``
    1-channel canvases with one handwritten digit (random identity) in the top-left (class 0) or the
    bottom-right quadrant (class 1): the label is position only. Training digits lie within ``near`` pixels
    of the image border; split ``similar`` is fresh samples of that, ``dissimilar`` puts each digit farther
    from the border than any training digit, still in its quadrant. A translation-invariant network cannot
    tell the classes apart at all — provided ``near`` is a multiple of the net's total stride: strided nets
    are invariant only to shifts by multiples of it, and otherwise read the digit's position modulo the
    stride (full padding then scores well above chance on ``similar`` and far below on ``dissimilar``).

Data come from ``np.random.default_rng(config["data_seed"])`` alone and are cached per configuration in the
process; the run's seed only draws the weights and the batch order.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from ...errors import EdgewiseError
from .. import data
from ..train import train_and_test
from ._base import Progress, Task

__all__ = ["TASK", "VARIANTS", "run_one", "make_data", "red_green", "location"]

#: variant → one line
VARIANTS = {
    "red-green": "red left of green (class 0, trained at the top) or green left of red (class 1, at the bottom)",
    "location": "a digit in the top-left (class 0) or the bottom-right quadrant (class 1), near the border",
}

#: the config keys that fix the data (everything else only changes the model or its training)
_DATA_KEYS = ("variant", "size", "n_train", "n_test", "data_seed", "box", "band", "digits", "digit_size", "near")


def red_green(n: int, size: int, box: int, band: int, rng: np.random.Generator):
    """``n`` red/green images: (x ``(n, 3, size, size)``, labels, dissimilar x), numpy float32 / int64.

    Each square's top row is drawn in ``[c - band, c + band]`` with ``c = size // 4 - 1`` (top band, class 0)
    or ``c + size // 2`` (bottom band, class 1), independently per square; the dissimilar images are the
    same images with every square moved by ``size // 2`` rows, class 0 down and class 1 up.
    """
    shift = size // 2
    top = size // 4 - 1
    if top - band < 0 or top + shift + band + box > size:
        raise EdgewiseError(f"red-green: a {box}-pixel box in bands of ±{band} rows does not fit a {size}-pixel "
                            f"image; use a smaller box or band, or a larger size")
    if top + band + box > top + shift - band:
        raise EdgewiseError(f"red-green: the top and bottom bands overlap (band ±{band}, box {box}, size {size})")
    if 2 * box + 1 > size:
        raise EdgewiseError(f"red-green: two {box}-pixel boxes with a gap do not fit side by side in {size} pixels")
    label = rng.integers(0, 2, n)
    # left/right squares: uniform over all pairs of columns that leave a gap of at least one pixel, so either
    # square may touch the left or right border
    left = np.empty(n, np.int64)
    right = np.empty(n, np.int64)
    todo = np.arange(n)
    while len(todo):
        a, b = rng.integers(0, size - box + 1, (2, len(todo)))
        ok = np.abs(a - b) > box
        left[todo[ok]], right[todo[ok]] = np.minimum(a, b)[ok], np.maximum(a, b)[ok]
        todo = todo[~ok]
    rows = rng.integers(-band, band + 1, (n, 2)) + top + shift * label[:, None]
    # class 0: red (channel 0) is the left square; class 1: green (channel 1) is
    red_x = np.where(label == 0, left, right)
    green_x = np.where(label == 0, right, left)
    moved = rows + np.where(label == 0, shift, -shift)[:, None]
    x, x_dis = (np.zeros((n, 3, size, size), np.float32) for _ in range(2))
    for i in range(n):
        for img, r in ((x, rows), (x_dis, moved)):
            img[i, 0, r[i, 0]:r[i, 0] + box, red_x[i]:red_x[i] + box] = 1
            img[i, 1, r[i, 1]:r[i, 1] + box, green_x[i]:green_x[i] + box] = 1
    return x, label.astype(np.int64), x_dis


def location(n: int, size: int, digits: np.ndarray, near: int, rng: np.random.Generator, far: bool = False):
    """``n`` canvases (n, 1, size, size) with one of ``digits`` each, and the labels (0 top-left, 1 bottom-right).

    The digit's offset from its corner of the image (each axis, independently) is drawn from ``0 … near-1``
    or, with ``far``, from ``near … size//2 - d`` (farther than any near one, still inside the quadrant).
    ``near`` consecutive offsets cover every residue modulo a stride that divides ``near`` equally often, in
    both classes, so the position modulo the stride carries no label.
    """
    d = digits.shape[-1]
    if near < 1 or near > size // 2 - d:
        raise EdgewiseError(f"location: near must be in 1…{size // 2 - d} so that farther positions exist inside "
                            f"the quadrant of a {size}-pixel image with {d}-pixel digits, got {near}")
    label = rng.integers(0, 2, n)
    pick = rng.integers(0, len(digits), n)
    lo, hi = (near, size // 2 - d) if far else (0, near - 1)
    offset = rng.integers(lo, hi + 1, (n, 2))
    corner = np.where(label[:, None] == 0, offset, size - d - offset)
    x = data.paste(torch.from_numpy(digits[pick])[:, None], (size, size), corner)
    return x.numpy(), label.astype(np.int64)


@functools.lru_cache(maxsize=8)
def _make_data(key: tuple):
    c = dict(zip(_DATA_KEYS, key))
    n_train, n_test, size = c["n_train"], c["n_test"], c["size"]
    if min(n_train, n_test) < 1:
        raise EdgewiseError(f"absolute-position: n_train and n_test must be at least 1, got {n_train}, {n_test}")
    rng = np.random.default_rng(c["data_seed"])
    if c["variant"] == "red-green":
        x, y, x_dis = red_green(n_train + n_test, size, c["box"], c["band"], rng)
        train = x[:n_train], y[:n_train]
        similar, dissimilar = (x[n_train:], y[n_train:]), (x_dis[n_train:], y[n_train:])
        shape = (3, size, size)
    else:
        digits = data.digit_images(c["digits"], c["digit_size"])[0][:, 0].numpy()
        # training and test digits come from disjoint halves of the source, so no test image is a training one
        half = len(digits) // 2
        train = location(n_train, size, digits[:half], c["near"], rng)
        similar = location(n_test, size, digits[half:], c["near"], rng)
        dissimilar = location(n_test, size, digits[half:], c["near"], rng, far=True)
        shape = (1, size, size)
    return _torch(train), {"similar": _torch(similar), "dissimilar": _torch(dissimilar)}, shape


def _torch(xy):
    return torch.from_numpy(np.ascontiguousarray(xy[0])), torch.from_numpy(xy[1])


def make_data(config: dict):
    """``(train, {"similar": …, "dissimilar": …}, input_shape)`` for ``config``; each part an (x, y) pair of
    tensors. Cached per data configuration (treat the tensors as read-only)."""
    variant = config.get("variant")
    if variant not in VARIANTS:
        raise EdgewiseError(f"absolute-position: unknown variant {variant!r}; valid variants: {', '.join(VARIANTS)}")
    return _make_data(tuple(config[k] for k in _DATA_KEYS))


def run_one(config: dict, remedy: str, seed: int, progress: Progress | None = None, checkpoint=None) -> dict:
    """Train the config's network with ``remedy`` from ``seed`` and test it on both splits."""
    train, tests, shape = make_data(config)
    return {**train_and_test(config, remedy, seed, train, tests, shape, progress, checkpoint), "chance": 0.5}


_QUICK = {
    "variant": "red-green",
    "model": "conv3/c16, conv3/s2/c16, conv3/s2/c32, conv3/s2/c32, gmp, fc2",
    "width": 16, "bias": False,
    # near = 8 = the model's total stride (see `location`); the bands are size // 2 = 16 rows apart, also a
    # multiple of 8, so full padding without bias and circular padding are exactly blind to the move
    "size": 32, "box": 4, "band": 3, "digits": "sklearn", "digit_size": 8, "near": 8,
    "n_train": 512, "n_test": 512, "data_seed": 0,
    "epochs": 8, "batch_size": 32, "lr": 3e-3,
}

TASK = Task(
    name="absolute-position",
    summary="Red left of green or green left of red? In training, one class sits near the top and the other near "
            "the bottom; testing with the bands swapped shows whether the network learned the relation or the "
            "absolute position (Kayhan & van Gemert 2020). Variant 'location': the class is the digit's quadrant.",
    prediction="Zero 'same' and valid padding can read the distance to the border and take the top/bottom "
               "shortcut: near 100 % on 'similar', far lower on 'dissimilar'. Full zero padding without bias and "
               "circular padding are translation invariant: equal on both splits ('location': chance on both).",
    sizes={
        "quick": _QUICK,
        "full": {**_QUICK, "model": "conv3/c32, conv3/s2/c32, conv3/s2/c64, conv3/s2/c64, gmp, fc2", "width": 32,
                 "n_train": 2000, "n_test": 1000, "epochs": 30, "lr": 1e-3},
    },
    run_one=run_one,
    remedies=("valid", "same", "full", "circular", "reflect", "partial", "coordconv"),
    splits={"similar": "fresh images from the training distribution",
            "dissimilar": "the bands swapped (red-green) / digits farther from the border (location)"},
    contrast=("dissimilar", "similar"),
    data=make_data,
)
