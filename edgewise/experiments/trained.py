"""A task's network trained outside a sweep, exactly as a run of the sweep trains it (for visualization)."""

from __future__ import annotations

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from .. import remedies as remedies_mod
from ..errors import EdgewiseError
from . import tasks
from .train import train_model

__all__ = ["trained_model"]


def trained_model(task, remedy: str = "same", seed: int = 0, size: str = "quick", *, threads: int = 1,
                  progress: bool = False, **overrides) -> nn.Module:
    """Train ``task``'s network with ``remedy`` from ``seed`` (the same weights as that run of a sweep with the
    same options and ``threads``) and return it in eval mode, with ``input_shape`` and ``experiment`` (task,
    remedy, seed, size, config) attached.

    Example:
        >>> net = trained_model("border-digits", "same", seed=0)  # doctest: +SKIP
        >>> net.input_shape  # doctest: +SKIP
        (1, 28, 28)
    """
    t = tasks.get(task)
    if t.data is None or t.axis != "remedy":
        raise EdgewiseError(f"task {t.name!r} has no single trained network per remedy; use one of "
                            f"{', '.join(n for n, x in tasks.TASKS.items() if x.data is not None and x.axis == 'remedy')}")
    remedies_mod.get(remedy)
    config = t.config(size, **overrides)
    train = t.data(config)[0]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    bar = tqdm(total=config["epochs"], desc=f"training {t.name} ({remedy}, seed {seed})", unit="epoch",
               disable=not progress, leave=False)
    try:
        model, _ = train_model(config, remedy, seed, train, progress=lambda done, total: bar.update(done - bar.n))
    finally:
        bar.close()
        torch.set_num_threads(before)
    model.input_shape = tuple(train[0].shape[1:])
    model.experiment = {"task": t.name, "remedy": remedy, "seed": seed, "size": size, "config": config}
    return model
