"""What every number system shares: the per-axis integer matrices and small array helpers."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from .._axis import Window, nonzeros

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

    def get_or(self, key, make, entries: int = 0):
        hit = self.get(key)
        if hit is None:
            hit = self[key] = make()
        return hit


class _SharedCache(OrderedDict):
    """What a number system derives from small axis maps, kept across computations (the next model of the
    same family needs the same few dozen): at most ``size`` items, each from a map of at most ``entries``."""

    def __init__(self, size: int = 256, entries: int = 1 << 16):
        super().__init__()
        self.size, self.entries = size, entries

    def get_or(self, key, make, entries: int = 0):
        hit = self.get(key)
        if hit is not None:
            self.move_to_end(key)
            return hit
        hit = make()
        if entries <= self.entries:
            self[key] = hit
            while len(self) > self.size:
                self.popitem(last=False)
        return hit


def window_taps(am: AxisMap):
    """``([(input slice, output slice)], log2 growth)`` of a zero-padded window: tap t adds outputs
    ``o`` to inputs ``o*stride + t*dilation - pad``, a strided slice each; or None for another op.

    Taps run from last to first, so every input receives its outputs in increasing order, as from
    :meth:`AxisMap.groups` (float sums come out bit for bit the same, in O(taps × length) numpy slices
    instead of fancy-index sums)."""
    op = am.op
    if type(op) is not Window or op.mode != "zeros":
        return None
    s, taps = op.stride, []
    reads = np.zeros(am.n_in, dtype=np.int64)
    for t in reversed(range(op.kernel)):
        off = t * op.dilation - op.pad[0]
        lo, hi = max(0, -(off // s)), min(am.n_out, (am.n_in - 1 - off) // s + 1)
        if hi > lo:
            taps.append((slice(lo * s + off, (hi - 1) * s + off + 1, s), slice(lo, hi)))
            reads[taps[-1][0]] += 1
    top = int(reads.max()) if reads.size else 0
    return taps, math.log2(top) if top > 0 else 0.0


def _slice_sum(x: np.ndarray, axis: int, taps, n_in: int) -> np.ndarray:
    """``Mᵀ`` along ``axis`` of ``x`` for a window's taps (:func:`window_taps`; numpy, float or object)."""
    shape = list(x.shape)
    shape[axis] = n_in
    y = np.zeros(shape, dtype=x.dtype)  # (object zeros are Python ints)
    lead = (slice(None),) * axis
    for into, read in taps:
        y[lead + (into,)] += x[lead + (read,)]
    return y


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
    (what it derives once from an :class:`AxisMap`: ``(kind, plan)``) and ``_step``; sums folded with ``add``."""

    def add_all(self, parts: list):
        """``add`` folded left to right over ``parts``."""
        acc = parts[0]
        for p in parts[1:]:
            acc = self.add(acc, p)
        return acc

    def spatial(self, rows, mats):
        """Adjoint of a separable spatial op: axis a of ``rows`` (n_out) → n_in via Mᵀ."""
        for a, am in enumerate(mats):
            if am is not None:
                rows = self._step(rows, a + 1, am, *self._plan(am))
        return rows
