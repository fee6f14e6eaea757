"""What every number system shares: the per-axis integer matrices and small array helpers."""

from __future__ import annotations

import math

import numpy as np

from .._axis import nonzeros

_DENSE = 1 << 18  # float matrices with more entries than this are only used through their non-zeros
_SMALL = 1 << 12  # ... and those with at most this many always densely
_FIBRES = 32  # in between, dense (BLAS) when at least this many fibres share the product
_GROUPS = 64  # at most this many column groups for the sparse product (else dense) ...
_DENSE_MAX = 1 << 24  # ... unless the dense matrix would be larger than this (128 MiB of int64)


class OutOfRange(Exception):
    """A count map spans more orders of magnitude than scaled float64 can hold."""


class AxisMap:
    """One spatial axis of a layer: ``op.matrix(n_in, n_out)``, ``M[o, i]`` = taps of output o on input i."""

    __slots__ = ("op", "n_in", "n_out")

    def __init__(self, op, n_in: int, n_out: int):
        self.op, self.n_in, self.n_out = op, int(n_in), int(n_out)

    @property
    def key(self):
        return self.op, self.n_in, self.n_out

    @property
    def entries(self) -> int:
        return self.n_in * self.n_out

    def dense(self) -> np.ndarray:
        return self.op.matrix(self.n_in, self.n_out)

    def groups(self):
        """Column groups ``[(rows, cols, values)]`` of the non-zeros, each column at most once per
        group (so ``y[..., cols] += x[..., rows] * values`` has no repeated index), or None when
        some input is read by more than ``_GROUPS`` outputs (a broadcast: dense is better, when it is small)."""
        rows, cols, vals = nonzeros(self.op, self.n_in, self.n_out)
        if cols.size == 0:
            return []
        start = np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]])
        rank = np.arange(cols.size) - np.repeat(start, np.diff(np.r_[start, cols.size]))
        if rank.max() >= _GROUPS and self.entries <= _DENSE_MAX:
            return None
        return [(rows[rank == j], cols[rank == j], vals[rank == j]) for j in range(int(rank.max()) + 1)]

    def growth(self) -> float:
        """log2 of the largest column sum: how much one spatial step can grow the largest count."""
        _, cols, vals = nonzeros(self.op, self.n_in, self.n_out)
        if cols.size == 0:
            return 0.0
        return math.log2(float(np.bincount(cols, weights=vals, minlength=self.n_in).max()))


class _Cache(dict):
    """Per-computation cache of what a number system derives from an :class:`AxisMap`."""

    def get_or(self, key, make):
        hit = self.get(key)
        if hit is None:
            hit = self[key] = make()
        return hit


def _along(x, axis: int, fn):
    """Apply ``fn`` (acting on the last axis) along ``axis`` of a numpy array."""
    last = x.ndim - 1
    if axis == last:
        return fn(x)
    return np.moveaxis(fn(np.moveaxis(x, axis, -1)), -1, axis)


def _sparse_sum(x: np.ndarray, groups, n_in: int, dtype) -> np.ndarray:
    """``x @ M`` along the last axis from M's column groups (numpy; object or float)."""
    y = np.zeros(x.shape[:-1] + (n_in,), dtype=dtype)
    if dtype is object:
        y[...] = 0  # Python int zeros
    for rows, cols, vals in groups:
        part = x[..., rows]
        y[..., cols] += part if vals is None else part * vals
    return y


class AxisByAxis:
    """Mixin: a spatial adjoint applied one axis at a time through the subclass's ``_plan(am)``
    (what it derives once from an :class:`AxisMap`: ``(kind, plan)``) and ``_step``."""

    def spatial(self, rows, mats):
        """Adjoint of a separable spatial op: axis a of ``rows`` (n_out) → n_in via Mᵀ."""
        for a, am in enumerate(mats):
            if am is not None:
                rows = self._step(rows, a + 1, am, *self._plan(am))
        return rows
