"""Path counts in linear float64: mantissas times one power of two per array."""

from __future__ import annotations

import math

import numpy as np
import torch

from .._axis import nonzeros
from .common import (_DENSE, _FIBRES, _SMALL, AxisMap, OutOfRange, _Cache, _SharedCache, _along, _slice_sum,
                     _sparse_sum, window_taps)

_TOP = 1000.0  # log2: mantissas stay below 2**_TOP (float64 overflows at 2**1024)
_BOTTOM = -1000.0  # log2: non-zero mantissas stay above 2**_BOTTOM (subnormal below 2**-1022)
_AIM = 500.0  # log2: a rescaled array's largest mantissa is put near 2**_AIM, leaving room to grow
_BLOCK = 32  # columns per block of a banded dense product
_LN2 = math.log(2.0)
_LOG10_2 = math.log10(2.0)


class Scaled:
    """``m * 2**e``: float64 mantissas ``m`` (≥ 0; numpy or torch) with one exponent, and log2 bounds on them.

    ``hi`` ≥ log2(max m) and ``lo`` ≤ log2(min non-zero m) (−inf / +inf when all
    are zero). Indexing and reshaping act on ``m`` and keep the bounds, so the
    engine handles a ``Scaled`` like an array of rows.
    """

    __slots__ = ("m", "e", "hi", "lo")

    def __init__(self, m, e: int, hi: float, lo: float):
        self.m, self.e, self.hi, self.lo = m, e, hi, lo

    @property
    def shape(self):
        return self.m.shape

    def __getitem__(self, idx) -> "Scaled":
        return Scaled(self.m[idx], self.e, self.hi, self.lo)

    def reshape(self, *shape) -> "Scaled":
        return Scaled(self.m.reshape(*shape), self.e, self.hi, self.lo)

    def __repr__(self) -> str:
        return f"Scaled(shape={tuple(self.m.shape)}, e={self.e}, hi={self.hi:.1f}, lo={self.lo:.1f})"


def _shift(m, k: int):
    """``m * 2**-k``, exactly, in steps that stay within float64's exponent range."""
    while k:
        step = max(-1000, min(1000, k))
        m = m * 2.0 ** -step
        k -= step
    return m


def _numel(m) -> int:
    return m.size if isinstance(m, np.ndarray) else m.numel()


def _log2_max(m) -> float:
    top = float(m.max()) if _numel(m) else 0.0
    return math.log2(top) if top > 0 else -math.inf


def _log2_min_nonzero(m) -> float:
    nz = m[m > 0]
    return math.log2(float(nz.min())) if _numel(nz) else math.inf


_NUMPY_PLANS = _SharedCache()


def _column_blocks(t: np.ndarray, tt: np.ndarray):
    """Blocks ``(i0, i1, o0, o1, M[o0:o1, i0:i1], its transpose)`` covering M's non-zeros, or None
    when M is small or not banded enough to gain from it; ``t`` is M (float64) and ``tt`` its transpose, of
    which the blocks are views.

    Convolution and pooling matrices are banded (an input is read by the few outputs
    whose window covers it), so the product with them costs a few small dense
    products instead of one large one; the small products also stay below the
    size at which BLAS would start threads, which only costs time on a busy machine.
    """
    n_out, n_in = t.shape
    if n_in <= 2 * _BLOCK:
        return None
    read = tt != 0  # (by input: each row contiguous)
    starts = np.arange(0, n_in, _BLOCK)
    used = read.any(axis=1)  # the first and last output reading each input, then each block's
    o0 = np.minimum.reduceat(np.where(used, read.argmax(axis=1), n_out), starts)
    o1 = np.maximum.reduceat(np.where(used, n_out - read[:, ::-1].argmax(axis=1), 0), starts)
    widths = np.minimum(starts + _BLOCK, n_in) - starts
    if int((np.maximum(o1 - o0, 0) * widths).sum()) > 0.5 * n_out * n_in:
        return None
    return [(i0, i0 + w, a, b, t[a:b, i0:i0 + w], tt[i0:i0 + w, a:b])
            for i0, w, a, b in zip(starts.tolist(), widths.tolist(), o0.tolist(), o1.tolist()) if b > a]


def _banded(x: np.ndarray, blocks, n_in: int, last: bool) -> np.ndarray:
    """``x @ M`` along the last axis (``last``) or ``Mᵀ @ x`` along the one before, block by block."""
    if last:
        y = np.zeros(x.shape[:-1] + (n_in,))
        for i0, i1, o0, o1, part, _ in blocks:
            y[..., i0:i1] = x[..., o0:o1] @ part
    else:
        y = np.zeros(x.shape[:-2] + (n_in, x.shape[-1]))
        for i0, i1, o0, o1, _, part_t in blocks:
            y[..., i0:i1, :] = part_t @ x[..., o0:o1, :]
    return y


class ScaledCounts:
    """Counts as linear float64 mantissas times a power of two per array (see the module docstring).

    On the CPU the mantissas are numpy arrays: the engine's many small products
    gain nothing from torch's intra-op threads, and on a busy machine waiting
    for them costs more than the arithmetic. Other devices use torch tensors.
    """

    exact = False

    def __init__(self, device=None):
        self.device = torch.device(device or "cpu")
        self._np = self.device.type == "cpu"
        self._cache = _NUMPY_PLANS if self._np else _Cache()  # (read-only numpy plans can be shared)
        self._steps: dict = {}  # (axis maps, elements) -> (their plans, log2 growth), for this computation

    # ------------------------------------------------------------ helpers

    def _array(self, a):
        if self._np:
            return np.ascontiguousarray(a, dtype=np.float64)
        return torch.tensor(np.asarray(a), dtype=torch.float64, device=self.device)

    def _plan(self, am: AxisMap, others: int):
        """(kind, data, log2 growth) for one axis map applied to ``others`` fibres: sparse on long axes
        and when few fibres share the product (1-D nets), dense (maybe banded) otherwise."""
        sparse = am.entries > _DENSE or (others < _FIBRES and am.entries > _SMALL)
        if sparse:
            plan = self._cache.get_or((am.key, "sparse"), lambda: self._sparse_plan(am), am.entries)
            if plan is not None:
                return plan
        return self._cache.get_or((am.key, "dense"), lambda: self._dense_plan(am), am.entries)

    def _sparse_plan(self, am: AxisMap):
        taps = window_taps(am) if self._np else None
        if taps is not None:
            return "slices", taps[0], taps[1]
        groups = am.groups()
        if groups is None:
            return None
        if self._np:
            data = [(r, c, None if (v == 1).all() else v.astype(np.float64)) for r, c, v in groups]
            for _, _, v in data:
                if v is not None:
                    v.setflags(write=False)
        else:
            rows, cols, vals = nonzeros(am.op, am.n_in, am.n_out)
            data = tuple(torch.as_tensor(np.array(a), device=self.device) for a in (rows, cols, vals))
        return "sparse", data, am.growth()

    def _dense_plan(self, am: AxisMap):
        m = am.dense()
        cols = m.sum(axis=0)
        grow = math.log2(float(cols.max())) if cols.size and cols.max() > 0 else 0.0
        t, tt = self._array(m), self._array(m.T)
        if self._np:  # shared between computations: read-only (the blocks are views of them)
            t.setflags(write=False)
            tt.setflags(write=False)
        blocks = _column_blocks(t, tt) if self._np else None
        return "dense", (t, tt, blocks), grow

    def _tighten(self, x: Scaled) -> Scaled:
        return Scaled(x.m, x.e, _log2_max(x.m), _log2_min_nonzero(x.m))

    def _fit(self, x: Scaled, growth: float) -> Scaled:
        """``x`` rescaled (exactly, by a power of two) so that growing by 2**growth cannot overflow."""
        if x.hi + growth <= _TOP:
            return x
        x = self._tighten(x)
        if x.hi + growth <= _TOP or x.hi == -math.inf:
            return x
        need = math.ceil(x.hi + growth - _TOP)
        k = min(max(need, math.floor(x.hi - _AIM)), math.floor(x.lo - _BOTTOM))
        if k < need:
            raise OutOfRange(f"counts span 2**{x.hi - x.lo:.0f}, beyond scaled float64")
        return Scaled(_shift(x.m, k), x.e + k, x.hi - k, x.lo - k)

    # ------------------------------------------------------------ operations

    def ones(self, mask: np.ndarray) -> Scaled:
        any_ = bool(np.any(mask))
        return Scaled(self._array(mask), 0, 0.0 if any_ else -math.inf, 0.0 if any_ else math.inf)

    def add(self, a: Scaled, b: Scaled) -> Scaled:
        if a.hi == -math.inf:
            return b
        if b.hi == -math.inf:
            return a
        a, b = self._fit(a, 1.0), self._fit(b, 1.0)
        small, big = (a, b) if a.e <= b.e else (b, a)
        c = self._common_exponent(small, big)
        if c is None:
            small, big = self._tighten(small), self._tighten(big)
            c = self._common_exponent(small, big)
            if c is None:
                raise OutOfRange("counts of two branches differ by more than scaled float64 can hold")
        ms = _shift(small.m, c - small.e)
        mb = _shift(big.m, c - big.e)
        hi = max(small.hi + small.e, big.hi + big.e) - c + 1.0
        lo = min(small.lo + small.e, big.lo + big.e) - c
        return Scaled(ms + mb, c, hi, lo)

    def add_all(self, parts: list) -> Scaled:
        """:meth:`add` folded left to right over ``parts``, bit for bit, but summing in place (no new
        array and no rescaling) while the exponents agree and nothing can overflow."""
        acc, owned = parts[0], False
        for p in parts[1:]:
            e = acc.e
            # the case where add() neither rescales nor shifts: same exponent, room to grow, acc.lo above
            # _BOTTOM (so that _common_exponent keeps e)
            if p.e != e or acc.hi == -math.inf or p.hi == -math.inf or max(acc.hi, p.hi) + 1.0 > _TOP \
                    or not acc.lo >= _BOTTOM or p.m.shape != acc.m.shape:
                acc, owned = self.add(acc, p), False
                continue
            m = acc.m
            if owned:
                m += p.m
            else:
                m, owned = m + p.m, True
            acc = Scaled(m, e, max(acc.hi + e, p.hi + e) - e + 1.0, min(acc.lo + e, p.lo + e) - e)  # as add()
        return acc

    @staticmethod
    def _common_exponent(small: Scaled, big: Scaled):
        """An exponent between the two at which neither side under- nor overflows (or None)."""
        c_max = small.e + math.floor(small.lo - _BOTTOM) if small.lo != math.inf else big.e
        c_min = big.e + math.ceil(big.hi + 1.0 - _TOP)
        c = min(big.e, c_max)
        return c if c >= c_min else None

    def mix(self, rows: Scaled, weights: np.ndarray) -> Scaled:
        """out[k] = Σ_g weights[k, g] · rows[g]."""
        one = weights.shape == (1, 1)  # (every channel of one map: the common case, without reductions)
        top = float(weights[0, 0]) if one else float(weights.sum(axis=1).max()) if weights.size else 0.0
        growth = math.log2(top) if top > 0 else 0.0
        x = self._fit(rows, growth)
        if one and x.m.shape[0] == 1:
            m = x.m if top == 1.0 else x.m * top
        else:
            flat = x.m.reshape(x.m.shape[0], -1)
            m = (self._array(weights) @ flat).reshape((weights.shape[0],) + tuple(x.m.shape[1:]))
        return Scaled(m, x.e, x.hi + growth, x.lo)

    def spatial(self, rows: Scaled, mats: tuple) -> Scaled:
        """Adjoint of a separable spatial op: axis a of ``rows`` (n_out) → n_in via Mᵀ."""
        n = _numel(rows.m)
        hit = self._steps.get((mats, n))  # (the same AxisMap objects again: one lookup, no plan searches)
        if hit is None:
            plans = [None if am is None else (am, self._plan(am, n // max(1, am.n_out))) for am in mats]
            hit = self._steps[mats, n] = plans, sum(p[1][2] for p in plans if p is not None)
        plans, growth = hit
        x = self._fit(rows, growth)
        m = x.m
        last = m.ndim - 1
        for a, p in enumerate(plans):
            if p is None:
                continue
            am, (kind, data, _) = p
            axis = a + 1
            if kind == "sparse":
                m = self._sparse(m, axis, data, am.n_in)
                continue
            if kind == "slices":
                m = _slice_sum(m, axis, data, am.n_in)
                continue
            t, tt, blocks = data
            if blocks is not None and axis >= last - 1:
                m = _banded(m, blocks, am.n_in, axis == last)
            elif axis == last:
                m = m @ t
            elif axis == last - 1:
                m = tt @ m
            elif self._np:
                m = np.moveaxis(np.moveaxis(m, axis, -1) @ t, -1, axis)
            else:
                m = (m.movedim(axis, -1) @ t).movedim(-1, axis)
        return Scaled(m, x.e, x.hi + growth, x.lo)

    def _sparse(self, m, axis: int, data, n_in: int):
        if self._np:
            return _along(m, axis, lambda x: _sparse_sum(x, data, n_in, np.float64))
        rows, cols, vals = data
        shape = list(m.shape)
        shape[axis] = n_in
        part = m.index_select(axis, rows) * vals.to(m.dtype).reshape([-1] + [1] * (m.dim() - 1 - axis))
        return torch.zeros(shape, dtype=m.dtype, device=m.device).index_add_(axis, cols, part)

    def unique_rows(self, full: Scaled):
        m = full.m
        n = m.shape[0]
        if self._np:
            same = n > 1 and np.array_equal(m.min(axis=0), m.max(axis=0))
        else:
            same = n > 1 and torch.equal(m.amin(dim=0), m.amax(dim=0))
        if same:  # e.g. a flattened constant map
            return Scaled(m[:1], full.e, full.hi, full.lo), np.zeros(n, dtype=np.int64)
        if self._np:
            rows, index = np.unique(m.reshape(n, -1), axis=0, return_inverse=True)
        else:
            rows, index = torch.unique(m.reshape(n, -1), dim=0, return_inverse=True)
            index = index.cpu().numpy()
        rows = rows.reshape((rows.shape[0],) + tuple(m.shape[1:]))
        return Scaled(rows, full.e, full.hi, full.lo), np.asarray(index, dtype=np.int64).reshape(-1)

    def _numpy(self, row: Scaled) -> np.ndarray:
        return row.m if self._np else row.m.cpu().numpy()

    def to_numpy(self, row: Scaled) -> np.ndarray:
        """Natural logarithms of the counts."""
        with np.errstate(divide="ignore"):
            return np.log(self._numpy(row)) + row.e * _LN2

    def log10(self, row: Scaled) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log10(self._numpy(row)) + row.e * _LOG10_2

    def linear(self, row: Scaled, log10: np.ndarray, scale: int) -> np.ndarray:
        """The counts divided by 10**scale, as float64 (exact for integer counts below 2**53 when scale is 0)."""
        if scale == 0:
            with np.errstate(over="ignore"):  # inf beyond float64 (only layer_counts asks for that)
                return np.ldexp(self._numpy(row), row.e)
        return np.where(np.isfinite(log10), 10.0 ** (log10 - scale), 0.0)
