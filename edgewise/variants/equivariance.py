"""Translation equivariance of any layer, measured in the interior and at the border apart.

Goodfellow et al. §9.2: parameter sharing makes convolution equivariant to translation —
exactly so with circular padding and circular shifts, and away from the border otherwise.
The border is where padding breaks it; this module measures how much and where.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .._trace import parse_shape
from ..errors import EdgewiseError
from ..results import Result

__all__ = ["Equivariance", "translation_equivariance"]


@dataclass
class Equivariance(Result):
    """How far ``layer(shift(x))`` is from ``shift(layer(x))``, relative to the largest ``|shift(layer(x))|``.

    Positions are the compared output positions along the shifted axis; a position is *interior*
    when, at it and at its shifted partner, the output reads a full, unwrapped window of the input
    (found by perturbing one input slice at a time), and *border* otherwise. Statistics over an
    empty set are NaN.
    """

    max_interior: float
    mean_interior: float
    max_border: float
    mean_border: float
    fraction_equivariant: float  # of compared output values with relative error ≤ 1e-6
    n_interior: int
    n_border: int
    error_by_position: np.ndarray  # max relative error at each compared position along the axis
    interior: np.ndarray  # bool, same length
    shift: int
    axis: int
    circular: bool

    kind = "equivariance"

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("max_interior", "mean_interior", "max_border", "mean_border",
                                              "fraction_equivariant", "n_interior", "n_border", "shift", "axis",
                                              "circular")}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"error_by_position": self.error_by_position, "interior": self.interior}

    def __str__(self) -> str:
        return (f"Equivariance(shift={self.shift}, axis={self.axis}, circular={self.circular}): interior max "
                f"{self.max_interior:.2g} mean {self.mean_interior:.2g} over {self.n_interior} positions; border max "
                f"{self.max_border:.2g} mean {self.mean_border:.2g} over {self.n_border}; "
                f"{self.fraction_equivariant:.1%} of outputs equivariant to 1e-6")


def spatial_axis(axis: int, d: int, where: str) -> int:
    """``axis`` (of the batched tensor, negative from the end) → the tensor dimension, checked to be spatial."""
    dim = axis + d + 2 if axis < 0 else axis
    if not isinstance(axis, (int, np.integer)) or not 2 <= dim < d + 2:
        raise EdgewiseError(f"{where}: axis={axis!r} is not a spatial axis of a (B, C, {'H, W' if d == 2 else 'L'}) "
                            f"input; use {'-1 (columns) or -2 (rows)' if d == 2 else '-1'}")
    return int(dim)


def layer_kind(layer):
    p = next(iter(layer.parameters()), None) if hasattr(layer, "parameters") else None
    return (p.dtype, p.device) if p is not None and p.dtype.is_floating_point else (torch.float64, "cpu")


def _take(t: torch.Tensor, dim: int, start: int, length: int) -> torch.Tensor:
    return t.narrow(dim, start, length)


def _dependency(layer, x: torch.Tensor, dim: int, chunk: int = 32) -> torch.Tensor:
    """Bool ``(n_out, n_in)`` on the CPU: output o changes when input slice i along ``dim`` is pushed hard.

    Each slice is pushed up and down by far more than the input's range, so that even a max
    pool or a ReLU passes the change on; the probes run ``chunk`` at a time.
    """
    n = x.shape[dim]
    big = 1e3 * (1.0 + float(x.abs().max()))
    rows = []
    pushes = [(sign, i) for i in range(n) for sign in (1.0, -1.0)]
    for start in range(0, len(pushes), chunk):
        probes = [x]  # the unpushed input rides in every batch: results can depend on the batch size
        for sign, i in pushes[start:start + chunk]:
            p = x.clone()
            p.narrow(dim, i, 1).add_(sign * big)
            probes.append(p)
        y = layer(torch.cat(probes))
        changed = y[1:] != y[:1]  # (probe, C', *spatial')
        rows.append(changed.movedim(dim, -1).reshape(len(probes) - 1, -1, y.shape[dim]).any(1).cpu())
    changed = torch.cat(rows).reshape(n, 2, -1).any(1)  # (i, o)
    return changed.T


def _full_windows(dep: torch.Tensor) -> torch.Tensor:
    """Per output position: its inputs form one contiguous run of the largest size seen (no border, no wrap)."""
    count = dep.sum(1)
    idx = torch.arange(dep.shape[1])
    lo = torch.where(dep, idx, dep.shape[1]).min(1).values
    hi = torch.where(dep, idx, -1).max(1).values
    return (count == count.max()) & (hi - lo + 1 == count)


def translation_equivariance(layer, input_shape, shift: int = 1, axis: int = -1, seed: int = 0,
                             circular: bool = False, out_shift: int | None = None,
                             border: int | None = None) -> Equivariance:
    """Measure ``layer(shift(x))`` against ``shift(layer(x))`` on a random input, interior and border apart.

    A circular shift (``circular=True``, ``torch.roll``) suits circular padding, for which a
    convolution is exactly equivariant. Otherwise the shift is a real translation: ``x`` and
    ``shift(x)`` are two windows of one larger random signal, so new content enters at one edge,
    and the positions compared are those where both outputs exist. Put the layer in eval mode
    (batch statistics would couple the probes).

    Args:
        layer: any callable on ``(B, C, *spatial)`` tensors returning ``(B, C', *spatial')``.
        input_shape: ``C×L`` or ``C×H×W`` without the batch axis (a tuple or ``"3x32x32"``).
        shift: samples to move the content towards higher indices (negative: lower).
        axis: spatial axis of the batched input, ``-1`` (columns) or ``-2`` (rows).
        seed: seed of the random input.
        circular: circular shift instead of a translation with new content.
        out_shift: the matching shift of the output (default ``shift``; ``shift // S`` for total stride S).
        border: output positions at each end counted as border (default: probed from the layer).

    Returns:
        :class:`Equivariance`.

    Example:
        >>> conv = torch.nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular").double()
        >>> translation_equivariance(conv, (1, 8, 8), circular=True).max_border < 1e-12
        True
    """
    where = "translation_equivariance"
    shape = parse_shape(input_shape)
    d = len(shape) - 1
    dim = spatial_axis(axis, d, where)
    shift, out_shift = int(shift), int(shift if out_shift is None else out_shift)
    n = shape[dim - 1]
    if abs(shift) >= n:
        raise EdgewiseError(f"{where}: shift={shift} must be smaller than the axis length {n}")
    dtype, device = layer_kind(layer)
    gen = torch.Generator().manual_seed(seed)
    ext = list((1,) + shape)
    ext[dim] += 0 if circular else abs(shift)
    base = torch.randn(ext, generator=gen, dtype=torch.float64).to(dtype=dtype, device=device)
    if circular:
        x, xs = base, torch.roll(base, shift, dim)
    else:  # xs[i] = x[i − shift]: both are length-n windows of base
        x = _take(base, dim, max(shift, 0), n)
        xs = _take(base, dim, max(-shift, 0), n)
    with torch.no_grad():
        y, ys = layer(x), layer(xs)
        if y.ndim != d + 2:
            raise EdgewiseError(f"{where}: the layer maps {tuple(x.shape)} to {tuple(y.shape)}; translation "
                                "equivariance needs an output with the same spatial axes")
        m = y.shape[dim]
        if abs(out_shift) >= m:
            raise EdgewiseError(f"{where}: out_shift={out_shift} must be smaller than the output length {m}")
        if circular:
            pos = torch.arange(m)
            want, got = torch.roll(y, out_shift, dim), ys
        else:  # compare ys[j] with y[j − out_shift] where both exist
            pos = torch.arange(max(out_shift, 0), m + min(out_shift, 0))
            want = _take(y, dim, max(-out_shift, 0), len(pos))
            got = _take(ys, dim, max(out_shift, 0), len(pos))
        if border is None:
            full = _full_windows(_dependency(layer, x, dim))
        else:
            full = torch.zeros(m, dtype=torch.bool)
            full[border:m - border] = True
    partner = (pos - out_shift) % m
    interior = (full[pos] & full[partner]).cpu().numpy()
    scale = float(want.abs().max()) or 1.0
    err = ((got - want).abs() / scale).to(torch.float64).movedim(dim, -1).reshape(-1, len(pos)).cpu().numpy()
    per_pos = err.max(0)

    def stats(mask):
        e = err[:, mask]
        return (float(e.max()), float(e.mean())) if e.size else (math.nan, math.nan)

    (mi, ai), (mb, ab) = stats(interior), stats(~interior)
    return Equivariance(mi, ai, mb, ab, float((err <= 1e-6).mean()), int(interior.sum()), int((~interior).sum()),
                        per_pos, interior, shift, int(axis), bool(circular))


