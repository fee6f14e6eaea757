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
from dataclasses import dataclass, field

import torch

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
    _cache: dict = field(default_factory=dict, repr=False)

    def take(self, canvas: torch.Tensor, offset, cap: float = math.inf) -> list[tuple[list[int], torch.Tensor]]:
        """The crops of ``canvas`` (objectives × rows-per-objective, C, *spatial), the window moved by ``offset``
        pixels per axis: per pass, its objectives and their rows' crops (one gather each). A pass holds one crop
        size and at most ``cap`` pixels (whole objectives, at least one). Images come channels-last (faster
        convolutions on a CPU: 1.2x on EfficientNet-Lite0, 1.6x on the VGG-like spec net at 64 px)."""
        shift = sum(int(o) * math.prod(canvas.shape[3 + d:]) for d, o in enumerate(offset))
        flat = canvas.reshape(-1)  # row-major, as the indices are
        out = []
        for objs, index in self._passes(tuple(canvas.shape), canvas.device, cap):
            x = flat.take(index + shift if shift else index)
            out.append((objs, x.movedim(-1, 1) if x.ndim == 4 else x))  # (rows, H, W, C) → channels-last view
        return out

    def _passes(self, shape: tuple[int, ...], device, cap: float) -> list:
        key = (shape, str(device), cap)
        if key not in self._cache:
            per = shape[0] // len(self.objectives)
            out = []
            for size, objs in self.groups:
                n = max(1, int(cap // (per * math.prod(size))))
                for a in range(0, len(objs), n):
                    index = self._gather_index(objs[a:a + n], size, per, shape)
                    index = index.movedim(1, -1) if index.ndim == 4 else index  # 2-D: gather channels-last
                    out.append((objs[a:a + n], index.contiguous().to(device)))
            self._cache[key] = out
        return self._cache[key]

    def _gather_index(self, objs: list[int], size: tuple[int, ...], per: int, shape) -> torch.Tensor:
        """Flat indices into a canvas of ``shape`` of the crops of ``objs``' rows (rows, C, *size)."""
        strides = [math.prod(shape[d + 1:]) for d in range(len(shape))]
        rows = torch.tensor([p * per + s for p in objs for s in range(per)])
        starts = torch.tensor([self.starts[p] for p in objs for _ in range(per)]).reshape(len(rows), -1)
        nd = len(size)
        idx = (rows * strides[0]).view(-1, 1, *([1] * nd)) + \
            (torch.arange(shape[1]) * strides[1]).view(1, -1, *([1] * nd))
        for d, n in enumerate(size):
            view = [len(rows), 1] + [n if e == d else 1 for e in range(nd)]
            idx = idx + ((starts[:, d:d + 1] + torch.arange(n)) * strides[2 + d]).view(view)
        return idx


def _field(model, input_shape, layers):
    from ..geometry import receptive_field

    try:
        return receptive_field(model, tuple(input_shape), layer=layers[0] if len(layers) == 1 else None)
    except Exception:  # noqa: BLE001 - crops only save time: a model the tracer cannot read runs on the full input
        return None


def _window(boxes, jump: tuple[int, ...], size: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The crop (start, size) holding every box, clipped to the input, started on a multiple of ``jump`` and
    as long as a multiple of it unless it ends at the input's border."""
    start, length = [], []
    for d, (j, n) in enumerate(zip(jump, size)):
        lo = max(0, math.floor(min(b[d][0] for b in boxes)))
        hi = min(n - 1, math.ceil(max(b[d][1] for b in boxes)))
        a = lo // j * j
        start.append(a)
        length.append(min(-(-(hi + 1 - a) // j) * j, n - a))
    return tuple(start), tuple(length)


def plan(model, objectives: list[Objective], input_shape) -> Crops | None:
    """Receptive-field crops for ``objectives`` (checked against the real maps), or None when one of them reads
    whole maps, the tracer cannot read the model, a stride is fractional, or every crop is the whole input."""
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
        s, n = _window([rf.box(layer, index) for layer, index in r], jump, size)
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
