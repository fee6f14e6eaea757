"""What to maximise: a unit at a position, a channel tiled over every position, and sums of them.

Positions are ``(row, col)`` (2-D) or ``(i,)`` (1-D) in the layer's real feature map, or a named anchor
(``center``, ``top``, ``bottom``, ``left``, ``right``, ``top_left``, ``top_right``, ``bottom_left``,
``bottom_right``; 1-D: ``center``, ``left``/``start``, ``right``/``end``), checked against the map's shape when
the objective first sees the activation. Layers are dotted ``named_modules()`` names.

    >>> obj = unit("conv3", 5, "top_left") - 0.5 * channel("conv3", 2)
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..errors import EdgewiseError

__all__ = ["Objective", "Unit", "Channel", "unit", "channel", "ANCHORS", "resolve"]

#: named positions: anchor → where along each axis (0 first, 0.5 middle, 1 last)
ANCHORS = {
    "center": (0.5, 0.5), "top": (0.0, 0.5), "bottom": (1.0, 0.5), "left": (0.5, 0.0), "right": (0.5, 1.0),
    "top_left": (0.0, 0.0), "top_right": (0.0, 1.0), "bottom_left": (1.0, 0.0), "bottom_right": (1.0, 1.0),
}
_ANCHORS_1D = {"center": 0.5, "middle": 0.5, "left": 0.0, "start": 0.0, "right": 1.0, "end": 1.0}


def resolve(position, shape: Sequence[int], layer: str = "layer") -> tuple[int, ...]:
    """``position`` (anchor name or indices) as indices into a feature map of spatial ``shape``, checked."""
    shape = tuple(int(s) for s in shape)
    if isinstance(position, str):
        table = ANCHORS if len(shape) == 2 else _ANCHORS_1D if len(shape) == 1 else {}
        if position not in table:
            raise EdgewiseError(f"unknown position {position!r} for the {len(shape)}-D map of {layer!r}; "
                                f"use indices or one of {', '.join(table)}")
        where = table[position] if len(shape) == 2 else (table[position],)
        # the middle of an even axis is the lower of its two central units, as (n - 1) // 2
        return tuple(int(round(f * (n - 1))) if f in (0.0, 1.0) else (n - 1) // 2 for f, n in zip(where, shape))
    pos = (int(position),) if isinstance(position, int) else tuple(int(p) for p in position)
    if len(pos) != len(shape) or not all(0 <= p < n for p, n in zip(pos, shape)):
        axes = "(row, col)" if len(shape) == 2 else "(position,)"
        raise EdgewiseError(f"position {position!r} is outside the feature map of {layer!r}, whose spatial shape "
                            f"is {shape} {axes}")
    return pos


class Objective:
    """A scalar per batch row, computed from the activations of some layers; supports ``+``, ``-`` and
    scaling by a number."""

    def layers(self) -> set[str]:  # pragma: no cover - overridden
        raise NotImplementedError

    def __call__(self, acts: dict[str, torch.Tensor]) -> torch.Tensor:  # pragma: no cover - overridden
        raise NotImplementedError

    def check(self, shapes: dict[str, tuple[int, ...]]) -> None:
        """Raise if a channel or position does not exist in the layers' real shapes (C, *spatial)."""

    def reads(self) -> set[tuple[str, tuple[int, ...]]] | None:
        """The ``(layer, index)`` units this objective reads (after :meth:`check`), or None when it reads whole
        maps."""
        return None

    def moved(self, origins: dict[str, tuple[int, ...]]) -> "Objective":
        """The same objective on maps whose first position is ``origins[layer]`` of the full map (a crop)."""
        raise EdgewiseError(f"{self!r} reads whole maps; it has no meaning on a crop")

    def __add__(self, other: "Objective") -> "Objective":
        return _Sum([(1.0, self), (1.0, other)])

    def __sub__(self, other: "Objective") -> "Objective":
        return _Sum([(1.0, self), (-1.0, other)])

    def __mul__(self, k: float) -> "Objective":
        return _Sum([(float(k), self)])

    __rmul__ = __mul__

    def __neg__(self) -> "Objective":
        return _Sum([(-1.0, self)])


def _channel_checked(layer: str, ch: int, shape) -> None:
    if not 0 <= ch < shape[0]:
        raise EdgewiseError(f"channel {ch} is outside layer {layer!r}, which has {shape[0]} channels")


class Unit(Objective):
    """The activation of one unit: ``layer``, ``channel``, ``position``."""

    def __init__(self, layer: str, ch: int, position="center"):
        self.layer, self.channel, self.position = layer, int(ch), position
        self.index: tuple[int, ...] | None = None

    def layers(self) -> set[str]:
        return {self.layer}

    def check(self, shapes) -> None:
        shape = shapes[self.layer]
        _channel_checked(self.layer, self.channel, shape)
        self.index = resolve(self.position, shape[1:], self.layer)

    def reads(self):
        return {(self.layer, self.index)} if self.index is not None else None

    def moved(self, origins):
        out = Unit(self.layer, self.channel, tuple(i - o for i, o in zip(self.index, origins[self.layer])))
        out.index = out.position
        return out

    def __call__(self, acts):
        a = acts[self.layer]
        if self.index is None:
            self.check({self.layer: tuple(a.shape[1:])})
        return a[(slice(None), self.channel, *self.index)]

    def __repr__(self) -> str:
        where = self.position if self.index is None else self.index
        return f"unit({self.layer!r}, {self.channel}, {where!r})"


class Channel(Objective):
    """A channel's mean activation over every position of its map (the "tiled" objective)."""

    def __init__(self, layer: str, ch: int):
        self.layer, self.channel = layer, int(ch)

    def layers(self) -> set[str]:
        return {self.layer}

    def check(self, shapes) -> None:
        _channel_checked(self.layer, self.channel, shapes[self.layer])

    def __call__(self, acts):
        a = acts[self.layer][:, self.channel]
        return a.reshape(len(a), -1).mean(1)

    def __repr__(self) -> str:
        return f"channel({self.layer!r}, {self.channel})"


class _Sum(Objective):
    def __init__(self, terms: list[tuple[float, Objective]]):
        flat = []
        for k, t in terms:
            flat.extend([(k * k2, t2) for k2, t2 in t.terms] if isinstance(t, _Sum) else [(k, t)])
        self.terms = flat

    def layers(self) -> set[str]:
        return set().union(*(t.layers() for _, t in self.terms))

    def check(self, shapes) -> None:
        for _, t in self.terms:
            t.check(shapes)

    def reads(self):
        parts = [t.reads() for _, t in self.terms]
        return None if any(p is None for p in parts) else set().union(*parts)

    def moved(self, origins):
        return _Sum([(k, t.moved(origins)) for k, t in self.terms])

    def __call__(self, acts):
        return sum(k * t(acts) for k, t in self.terms)

    def __repr__(self) -> str:
        return " + ".join(f"{k:g}*{t!r}" for k, t in self.terms)


def unit(layer: str, ch: int, position="center") -> Unit:
    """The unit ``(layer, channel, position)``; position: (row, col), (i,), or an anchor from :data:`ANCHORS`."""
    return Unit(layer, ch, position)


def channel(layer: str, ch: int) -> Channel:
    """Channel ``ch`` of ``layer``, averaged over all positions."""
    return Channel(layer, ch)
