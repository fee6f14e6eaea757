"""A tiny, fast task for testing the experiment runner: is a bump anywhere in a signal up or down?"""

from __future__ import annotations

import functools

import numpy as np
import torch

from ..errors import EdgewiseError
from ..experiments.tasks._base import Task
from ..experiments.train import train_and_test

__all__ = ["TOY"]


@functools.lru_cache(maxsize=4)
def _data(n: int, length: int, data_seed: int):
    rng = np.random.default_rng(data_seed)
    pos = rng.integers(0, length - 2, size=n)
    label = rng.integers(0, 2, size=n)
    x = rng.normal(0, 0.1, (n, 1, length)).astype(np.float32)
    x[np.arange(n), 0, pos] += 2.0 * label - 1
    x[np.arange(n), 0, pos + 1] += 2.0 * label - 1
    return torch.from_numpy(x), torch.from_numpy(label.astype(np.int64))


def run_one(config: dict, remedy: str, seed: int, progress=None, checkpoint=None) -> dict:
    if config["fail"] == remedy:
        raise EdgewiseError(f"toy: remedy {remedy!r} does not fit")
    length = config["length"]
    x, y = _data(config["n_train"] + config["n_test"], length, config["data_seed"])
    n = config["n_train"]
    return train_and_test(config, remedy, seed, (x[:n], y[:n]), {"test": (x[n:], y[n:]), "train": (x[:n], y[:n])},
                          (1, length), progress, checkpoint)


TOY = Task(
    name="toy", summary="up or down?", prediction="every remedy learns it",
    sizes={"quick": {"model": "conv3/c4, conv3/c4, gmp, fc2", "width": 4, "epochs": 3, "batch_size": 16,
                     "lr": 0.02, "n_train": 64, "n_test": 64, "length": 16, "data_seed": 0, "fail": ""}},
    run_one=run_one, remedies=("same", "circular"), splits={"test": "fresh signals", "train": "the training set"})
