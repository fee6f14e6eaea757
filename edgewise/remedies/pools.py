"""Max and average pools whose padding reads the input extended in a padding mode (circular, reflect, ...).

A pool that pads reads −∞ (max) or zeros (average) at the border, so its edge windows read fewer inputs;
with ``ceil_mode`` and a stride it may add a last window that runs past the input and its padding
(GoogLeNet's 3×3/2 pools), which reads nothing there. :class:`PaddedMaxPool2d` and its kin read the same
windows, with every position outside the input taken from the input extended in ``mode``, so that no window
of the pool keeps an edge: the input is padded by the pool's own padding and, at the end of each axis, as far
as its last window reaches (worked out from the input's size at each call), then pooled without padding.

Each states its windows for edgewise's tracer (``edgewise_op``): the pool's own, in ``mode``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._axis import Window
from .._pad import pad
from .transforms import _per_axis

__all__ = ["PaddedMaxPool1d", "PaddedMaxPool2d", "PaddedAvgPool1d", "PaddedAvgPool2d", "padded_pool"]


class _PaddedPool(nn.Module):
    """The windows of ``pool`` (an nn.MaxPoolNd / nn.AvgPoolNd), reading ``mode`` outside the input."""

    ndim = 2
    _pool = staticmethod(F.max_pool2d)

    def __init__(self, pool: nn.Module, mode: str):
        super().__init__()
        n = self.ndim
        self.kernel_size = _per_axis(pool.kernel_size, n)
        self.stride = _per_axis(pool.stride or pool.kernel_size, n)
        self.padding = _per_axis(pool.padding, n)
        self.dilation = _per_axis(getattr(pool, "dilation", 1), n)
        self.ceil_mode, self.mode = bool(pool.ceil_mode), mode
        self.divisor_override = getattr(pool, "divisor_override", None)
        self.train(pool.training)

    def windows(self) -> tuple[Window, ...]:
        """One :class:`edgewise._axis.Window` per axis: the pool's windows, ``mode`` outside the input."""
        return tuple(Window(k, s, d, (p, p), self.mode, self.ceil_mode)
                     for k, s, d, p in zip(self.kernel_size, self.stride, self.dilation, self.padding))

    def edgewise_op(self, ndim: int):
        """Connectivity for edgewise's tracer: a pool with these windows."""
        return "pool", self.windows()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        widths = []
        for w, size in zip(self.windows(), x.shape[-self.ndim:]):
            last = (w.out_size(size) - 1) * w.stride + w.extent  # where the last window ends, padding included
            widths.append((w.pad[0], max(w.pad[1], last - size - w.pad[0])))
        x = pad(x, [q for lo_hi in reversed(widths) for q in lo_hi], self.mode)
        if self._pool in (F.max_pool1d, F.max_pool2d):
            return self._pool(x, self.kernel_size, self.stride, 0, self.dilation)
        extra = (self.divisor_override,) if self.ndim == 2 else ()
        return self._pool(x, self.kernel_size, self.stride, 0, False, True, *extra)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}, mode={self.mode!r}")


class PaddedMaxPool1d(_PaddedPool):
    """nn.MaxPool1d's windows, reading the input extended in ``mode`` where it read −∞."""

    ndim, _pool = 1, staticmethod(F.max_pool1d)


class PaddedMaxPool2d(_PaddedPool):
    """nn.MaxPool2d's windows, reading the input extended in ``mode`` where it read −∞."""

    ndim, _pool = 2, staticmethod(F.max_pool2d)


class PaddedAvgPool1d(_PaddedPool):
    """nn.AvgPool1d's windows, reading the input extended in ``mode`` where it read zeros or nothing; every window
    averages its full kernel."""

    ndim, _pool = 1, staticmethod(F.avg_pool1d)


class PaddedAvgPool2d(_PaddedPool):
    """nn.AvgPool2d's windows, reading the input extended in ``mode`` where it read zeros or nothing; every window
    averages its full kernel (or ``divisor_override``)."""

    ndim, _pool = 2, staticmethod(F.avg_pool2d)


_CLASSES = {nn.MaxPool1d: PaddedMaxPool1d, nn.MaxPool2d: PaddedMaxPool2d, nn.AvgPool1d: PaddedAvgPool1d,
            nn.AvgPool2d: PaddedAvgPool2d}


def padded_pool(pool: nn.Module, mode: str) -> nn.Module | None:
    """``pool`` reading ``mode`` wherever it read past its input: its padding, and the last window ``ceil_mode``
    may add at a stride; None for a pool that never does (no padding, and no ``ceil_mode`` at a stride > 1), or
    one that returns indices."""
    cls = _CLASSES.get(type(pool))
    if cls is None or getattr(pool, "return_indices", False):
        return None
    n = cls.ndim
    strided_ceil = pool.ceil_mode and any(s != 1 for s in _per_axis(pool.stride or pool.kernel_size, n))
    if not any(_per_axis(pool.padding, n)) and not strided_ceil:
        return None
    return cls(pool, mode)
