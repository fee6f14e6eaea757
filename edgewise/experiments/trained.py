"""A task's network trained outside a sweep, exactly as a run of the sweep trains it (for visualization)."""

from __future__ import annotations

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from .. import remedies as remedies_mod
from ..errors import EdgewiseError
from . import tasks
from .train import train_model

__all__ = ["from_reference", "trained_model"]


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
               disable=None if progress else True, leave=False)
    try:
        model, _ = train_model(config, remedy, seed, train, progress=lambda done, total: bar.update(done - bar.n))
    finally:
        bar.close()
        torch.set_num_threads(before)
    model.input_shape = tuple(train[0].shape[1:])
    model.experiment = {"task": t.name, "remedy": remedy, "seed": seed, "size": size, "config": config}
    return model


def from_reference(ref: str) -> nn.Module:
    """``experiment:TASK[:REMEDY[:SEED]]``: the task's quick network, trained now (seconds); registered with
    :func:`edgewise.models.register_resolver` when :mod:`edgewise.experiments` is imported."""
    parts = ref.split(":")[1:]
    if not 1 <= len(parts) <= 3 or not parts[0]:
        raise EdgewiseError(f"bad model reference {ref!r}: expected experiment:TASK[:REMEDY[:SEED]], e.g. "
                            "experiment:border-digits:same:0")
    task, remedy, seed = parts[0], parts[1] if len(parts) > 1 else "same", parts[2] if len(parts) > 2 else "0"
    if not seed.isdigit():
        raise EdgewiseError(f"bad model reference {ref!r}: the seed must be a number, got {seed!r}")
    net = trained_model(task, remedy, int(seed), progress=True)
    net.reference = ref  # so reports and tables name it as the user did
    return net
