"""Layers whose output cannot move a model's output, skipped without changing a number (machinery of
:mod:`edgewise.sensitivity`).

A normalisation layer whose weight is zero outputs its bias whatever its input (timm's ResNets start the last norm
of every residual branch so: ``zero_init_last``). Everything whose output reaches the model's output only through
such layers (the branch's convolutions) then has no effect on the output's value or its gradients: its values are
only ever multiplied by that zero weight. :func:`silent_layers` finds those layers in the traced Graph and
:func:`silenced` runs the model with each of them returning zeros of its output's shape, at no cost. The output
and every input gradient are the same, bit for bit: the zero weight multiplies zeros instead of the branch's
values (0 · x = 0 for finite x), and the gradient through the branch, exactly zero, is no longer added.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch.nn as nn

__all__ = ["silent_layers", "silenced"]

#: layers worth skipping: those with multiply-adds (per-unit layers on zeros cost next to nothing)
_COSTLY = (nn.modules.conv._ConvNd, nn.Linear)


def silent_layers(graph, model: nn.Module, zero: list[str]) -> dict[str, tuple[int, ...]]:
    """The convolutions and Linear layers of ``model`` whose every output reaches ``graph``'s output only through
    the layers named in ``zero`` (normalisations whose weight is zero in every case the caller runs), each with
    its output's shape without the batch axis. A layer called more than once, or not called by name, is kept."""
    zero = set(zero)
    if not zero:
        return {}
    readers: dict[str, list[str]] = {}
    for nd in graph:
        for i in nd.inputs:
            readers.setdefault(i, []).append(nd.name)
    live = set()
    for nd in reversed(list(graph)):  # readers first: a node lives if a live reader reads it, a zero norm aside
        if nd.name == graph.output or any(r in live and r not in zero for r in readers.get(nd.name, ())):
            live.add(nd.name)
    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    for nd in graph:
        base = nd.name.split("#")[0]
        calls[base] = calls.get(base, 0) + 1
    return {nd.name: tuple(nd.shape) for nd in graph
            if nd.name not in live and nd.name not in zero and calls[nd.name] == 1
            and isinstance(modules.get(nd.name), _COSTLY)}


def _zeros_like_output(self, x, *args, **kwargs):
    """The forward of a silenced layer: zeros of its output's shape (its batch axis from the input)."""
    return x.new_zeros((x.shape[0], *self._edgewise_silent))


_CLASSES: dict[type, type] = {}


def _silent_class(cls: type) -> type:
    """A subclass of ``cls`` whose forward returns zeros (one per class; the layer keeps its parameters)."""
    if cls not in _CLASSES:
        _CLASSES[cls] = type(f"Silent{cls.__name__}", (cls,), {"forward": _zeros_like_output})
    return _CLASSES[cls]


@contextmanager
def silenced(model: nn.Module, layers: dict[str, tuple[int, ...]]):
    """Within the block, each layer of ``layers`` (name → output shape) returns zeros of that shape instead of
    computing; its parameters, names and state stay as they were. Restored on exit."""
    swapped = []
    try:
        for name, shape in layers.items():
            m = model.get_submodule(name)
            swapped.append((m, type(m)))
            m.__class__ = _silent_class(type(m))
            m._edgewise_silent = shape
        yield
    finally:
        for m, cls in swapped:
            m.__class__ = cls
            del m._edgewise_silent
