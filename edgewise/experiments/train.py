"""Seeded training and testing of small classifiers, with per-epoch checkpoints that make a run resumable."""

from __future__ import annotations

import copy
import io
import math
import warnings
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import nets, remedies
from ..errors import EdgewiseWarning
from ..results import write_atomic
from .tasks._base import Progress

__all__ = ["build_model", "fit", "accuracy", "train_model", "train_and_test"]

#: ``on_step(model, step, state)``: called after each backward pass, before the optimiser step
OnStep = Callable[[nn.Module, int, dict], None]


def build_model(config: dict, remedy: str, input_shape, seed: int) -> nn.Module:
    """The task's spec net (``config['model']``, zero 'same' padding, no bias unless ``config['bias']``) with
    ``remedy`` applied; its weights are drawn from ``seed``."""
    net = nets.from_spec(config["model"], input_shape, padding="same", width=config.get("width", 16),
                         bias=config.get("bias", False), seed=seed)
    if remedy != "same":
        net = remedies.apply(net, remedy, input_shape=input_shape)
    return net


def _load(checkpoint: Path | None):
    """The training state saved at ``checkpoint``, or None when there is none or it cannot be trusted.

    A checkpoint may sit in a shared ``--out`` folder, so it is read as data only (``weights_only=True``:
    tensors and plain containers, never code) and its layout is checked; a damaged or foreign file is
    set aside with a warning naming it, and the run starts again from its first epoch.
    """
    if checkpoint is None or not Path(checkpoint).exists():
        return None
    try:
        doc = torch.load(checkpoint, map_location="cpu", weights_only=True)
        missing = [k for k, kind in _CHECKPOINT_KEYS.items()
                   if not isinstance(doc, dict) or not isinstance(doc.get(k), kind)]
        if missing:
            raise ValueError(f"no valid {', '.join(missing)}")
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in doc["losses"]):
            raise ValueError("its losses are not finite numbers")
    except Exception as e:  # unpickling refused, truncated file, wrong layout: all mean "do not trust it"
        _distrust(checkpoint, e)
        return None
    return doc


#: what a checkpoint holds, and the type of each part
_CHECKPOINT_KEYS = {"model": dict, "optimizer": dict, "generator": torch.Tensor, "losses": list, "state": dict}


def _distrust(checkpoint: Path, why: Exception) -> None:
    reason = str(why).strip().splitlines()[0] if str(why).strip() else type(why).__name__
    warnings.warn(f"ignoring the checkpoint {checkpoint} ({reason[:200]}); the run starts again from its first "
                  "epoch", EdgewiseWarning, stacklevel=3)


def _restore(saved: dict, model: nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator, checkpoint: Path):
    """Load ``saved`` into the model, optimiser and generator; on a mismatch, put everything back as it was
    and return None (the run starts over), else the epoch losses so far."""
    before = copy.deepcopy((model.state_dict(), opt.state_dict(), gen.get_state()))
    try:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        gen.set_state(saved["generator"])
    except Exception as e:  # a checkpoint of another model, or a tampered one
        model.load_state_dict(before[0])
        opt.load_state_dict(before[1])
        gen.set_state(before[2])
        _distrust(checkpoint, e)
        return None
    return [float(v) for v in saved["losses"]]


def _save(checkpoint: Path, doc: dict) -> None:
    buf = io.BytesIO()
    torch.save(doc, buf)
    write_atomic(checkpoint, buf.getvalue())


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int, lr: float,
        seed: int, weight_decay: float = 0.0, progress: Progress | None = None, on_step: OnStep | None = None,
        state: dict | None = None, checkpoint: Path | None = None) -> list[float]:
    """Train ``model`` with Adam on cross-entropy; returns the mean training loss of each epoch.

    Args:
        seed: seeds the batch order (the model's weights are the caller's).
        progress: called with ``(epochs done, epochs)`` when training starts (0, or where a checkpoint left
            off) and after each epoch.
        on_step: called after every backward pass with ``(model, step, state)``, gradients in place.
        state: the caller's own record (lists of numbers), saved in and restored from the checkpoint.
        checkpoint: after every epoch the model, optimiser, batch-order generator, losses and ``state`` are
            written here atomically; a run started with an existing checkpoint continues from it.
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    state = {} if state is None else state
    saved = _load(checkpoint)
    if saved is not None:
        restored = _restore(saved, model, opt, gen, checkpoint)
        if restored is not None:
            losses = restored
            state.update(saved["state"])
    n = len(x)
    step = len(losses) * -(-n // batch_size)
    model.train()
    if progress is not None:
        progress(len(losses), epochs)
    for epoch in range(len(losses), epochs):
        order = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if on_step is not None:
                on_step(model, step, state)
            opt.step()
            total += loss.item() * len(idx)
            step += 1
        losses.append(total / n)
        if checkpoint is not None:
            _save(checkpoint, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                               "generator": gen.get_state(), "losses": losses, "state": state})
        if progress is not None:
            progress(epoch + 1, epochs)
    return losses


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Fraction of ``x`` classified as ``y`` (eval mode; the model's mode is restored)."""
    was = model.training
    model.eval()
    try:
        right = sum(int((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
                    for i in range(0, len(x), batch_size))
    finally:
        model.train(was)
    return right / max(1, len(x))


def train_model(config: dict, remedy: str, seed: int, train: tuple, input_shape=None,
                progress: Progress | None = None, checkpoint: Path | None = None) -> tuple[nn.Module, list[float]]:
    """Build the model for ``remedy`` (weights from ``seed``) and fit it on ``train`` = (x, y) with the config's
    epochs, batch size and learning rate; returns the model (eval mode) and the loss of every epoch."""
    model = build_model(config, remedy, input_shape or tuple(train[0].shape[1:]), seed)
    losses = fit(model, *train, epochs=config["epochs"], batch_size=config["batch_size"], lr=config["lr"],
                 seed=seed, weight_decay=config.get("weight_decay", 0.0), progress=progress, checkpoint=checkpoint)
    return model.eval(), losses


def train_and_test(config: dict, remedy: str, seed: int, train: tuple, tests: dict[str, tuple], input_shape,
                   progress: Progress | None = None, checkpoint: Path | None = None) -> dict:
    """Train the model for ``remedy`` on ``train`` and score every test split: the usual run."""
    model, losses = train_model(config, remedy, seed, train, input_shape, progress, checkpoint)
    return {"accuracy": {split: accuracy(model, *data) for split, data in tests.items()},
            "train_accuracy": accuracy(model, *train), "loss": losses}
