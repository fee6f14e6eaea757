"""Receptive-field crops: run the model only on the input pixels each objective reads.

A unit depends only on the input pixels inside its receptive field. Cut to that field, clipped to the image
and started on a multiple of the layer's stride (so that the crop's feature-map grid lies on the image's), the
truncated model computes the same unit: every map position it reads lies inside the crop, and where the crop
meets the image border the padding is the image's own. Objectives whose crops have one size share a forward
pass (several on a CPU when they are large). The fields come from :func:`edgewise.geometry.receptive_field`;
:func:`plan` returns None where the tracer cannot read the model or no crop is smaller than the input, and the
engine checks every plan on a random image against the full input before it uses it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .memo import memo, remember
from .objectives import Objective

__all__ = ["Crops", "plan"]


@dataclass
class Crops:
    """Per objective, where its crop starts and how large it is (input pixels, per spatial axis), the objective
    as read on its crop's maps, and the objectives grouped by crop size (a forward pass holds one size)."""

    starts: list[tuple[int, ...]]
    sizes: list[tuple[int, ...]]
    objectives: list[Objective]
    groups: list[tuple[tuple[int, ...], list[int]]]

    def passes(self, rows: int, cap: float = math.inf) -> list[list[int]]:
        """The objectives of each forward pass when every objective has ``rows`` rows: one crop size a pass and
        at most ``cap`` input pixels (whole objectives, at least one)."""
        out = []
        for size, objs in self.groups:
            n = per_pass(cap, rows * math.prod(size))
            out.extend(objs[a:a + n] for a in range(0, len(objs), n))
        return out

    def gather(self, canvas: torch.Tensor, objs: list[int], offset) -> torch.Tensor:
        """The crops of ``objs``' rows of ``canvas`` (objectives × rows-per-objective, C, *spatial; ``objs`` of one
        crop size, as a pass of :meth:`passes` holds), the window moved by ``offset`` pixels per axis, stacked in
        that order: a new tensor, without autograd (:meth:`put` places a crop's gradient back). 2-D crops come
        channels-last (faster convolutions on a CPU: 1.2x on EfficientNet-Lite0, 1.6x on the VGG-like spec net
        at 64 px)."""
        rows = len(canvas) // len(self.objectives)
        size = self.sizes[objs[0]]
        layout = torch.channels_last if canvas.ndim == 4 else torch.contiguous_format
        x = torch.empty((len(objs) * rows, canvas.shape[1], *size), dtype=canvas.dtype, device=canvas.device,
                        memory_format=layout)
        with torch.no_grad():
            for i, p in enumerate(objs):
                x[i * rows:(i + 1) * rows] = self._region(canvas, p, rows, offset)
        return x

    def put(self, grad: torch.Tensor, objs: list[int], offset, crop_grad: torch.Tensor) -> None:
        """Write ``crop_grad`` (the gradient of :meth:`gather`'s crops of ``objs``) into ``grad`` (canvas-shaped,
        zero outside the crops: each row has one crop, so nothing overlaps)."""
        rows = len(grad) // len(self.objectives)
        for i, p in enumerate(objs):
            self._region(grad, p, rows, offset).copy_(crop_grad[i * rows:(i + 1) * rows])

    def _region(self, canvas: torch.Tensor, p: int, rows: int, offset) -> torch.Tensor:
        """The view of ``canvas`` that objective ``p``'s rows read."""
        spatial = (slice(a + int(o), a + int(o) + n) for a, o, n in zip(self.starts[p], offset, self.sizes[p]))
        return canvas[(slice(p * rows, (p + 1) * rows), slice(None), *spatial)]


def per_pass(cap: float, pixels: int) -> int:
    """How many objectives of ``pixels`` input pixels each one pass of at most ``cap`` pixels holds (at least one;
    all where the cap is infinite)."""
    return max(1, int(cap // pixels)) if math.isfinite(cap) else 2 ** 62


def _field(model, input_shape, layers):
    """The receptive fields of ``layers`` (kept in the model's :func:`~edgewise.visualize.memo.memo`), or None
    where the tracer cannot read the model."""
    from ..geometry import receptive_field

    known, key = memo(model), ("fields", tuple(input_shape), tuple(layers))
    if key not in known:
        try:
            rf = receptive_field(model, tuple(input_shape), layer=layers[0] if len(layers) == 1 else None)
        except Exception:  # noqa: BLE001 - crops only save time: a model the tracer cannot read runs on the full input
            rf = None
        remember(known, key, rf)
    return known[key]


def _window(boxes, jump: tuple[int, ...], size: tuple[int, ...],
            tight: bool = False) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The crop (start, size) holding every box, clipped to the input, started on a multiple of ``jump`` and
    as long as a multiple of it unless it ends at the input's border (``tight``: ending where the boxes end)."""
    start, length = [], []
    for d, (j, n) in enumerate(zip(jump, size)):
        lo = max(0, math.floor(min(b[d][0] for b in boxes)))
        hi = min(n - 1, math.ceil(max(b[d][1] for b in boxes)))
        a = lo // j * j
        start.append(a)
        length.append(hi + 1 - a if tight else min(-(-(hi + 1 - a) // j) * j, n - a))
    return tuple(start), tuple(length)


def plan(model, objectives: list[Objective], input_shape, tight: bool = False) -> Crops | None:
    """Receptive-field crops for ``objectives`` (checked against the real maps), or None when one of them reads
    whole maps, the tracer cannot read the model, a stride is fractional, or every crop is the whole input.

    A crop ends where its field ends with ``tight``, else on the stride grid: a tight crop's maps end in a
    partial stride, which the layers must take as the full input's (plain padding does; padding computed from
    the input's size, such as TensorFlow's "same", may not), so the engine tries it first and checks it."""
    reads = [o.reads() for o in objectives]
    if any(r is None for r in reads):
        return None
    layers = sorted({layer for r in reads for layer, _ in r})
    rf = _field(model, input_shape, layers)
    if rf is None:
        return None
    try:
        fields = {layer: rf[layer] for layer in layers}
    except Exception:  # noqa: BLE001 - a layer the trace names differently: no crops
        return None
    if not all(lf.spatial and lf.jump and all(float(j).is_integer() for j in lf.jump) for lf in fields.values()):
        return None
    jumps = {layer: tuple(int(j) for j in lf.jump) for layer, lf in fields.items()}
    jump = tuple(math.lcm(*axis) for axis in zip(*jumps.values()))
    size = tuple(input_shape[1:])
    starts, sizes = [], []
    for r in reads:
        s, n = _window([rf.box(layer, index) for layer, index in r], jump, size, tight)
        starts.append(s)
        sizes.append(n)
    if all(n == size for n in sizes):
        return None
    moved = [o.moved({layer: tuple(a // j for a, j in zip(s, jumps[layer])) for layer in layers})
             for o, s in zip(objectives, starts)]
    groups: dict[tuple[int, ...], list[int]] = {}
    for p, n in enumerate(sizes):
        groups.setdefault(n, []).append(p)
    return Crops(starts, sizes, moved, list(groups.items()))
