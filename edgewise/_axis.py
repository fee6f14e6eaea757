"""How one spatial axis of a layer connects output positions to input positions.

Every spatial layer edgewise understands is, along each axis, one of a few
operations. Each knows two things, both tensor-free:

* ``matrix(n_in, n_out)``: an integer matrix ``M[o, i]`` = number of taps of
  output position ``o`` that read input position ``i`` (the pathway semantics;
  a 2-D layer connects ``(o1, o2)`` to ``(i1, i2)`` by ``M1[o1, i1] * M2[o2, i2]``
  taps).
* ``affine()``: ``(extent, stride, offset)`` when output ``o`` looks at the
  padded-input window starting at ``o * stride - offset`` of ``extent`` taps, or
  ``None`` when the layer is not a regular sliding window (the geometry then
  falls back to the matrix).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ._sets import unique

__all__ = ["Window", "Transposed", "Adaptive", "Resample", "Broadcast", "Table", "Flat", "PADDING_MODES", "mirror",
           "nonzeros"]

#: padding modes that read the input (every other out-of-image tap reads a constant)
PADDING_MODES = ("zeros", "reflect", "replicate", "circular", "symmetric")


def mirror(x: int, n: int, mode: str) -> int | None:
    """Input index read by (possibly out-of-range) position ``x``, or None for a constant."""
    if 0 <= x < n:
        return x
    if mode == "zeros":
        return None
    if mode == "replicate":
        return min(max(x, 0), n - 1)
    if mode == "circular":
        return x % n
    if n == 1:
        return 0
    if mode == "reflect":  # edge sample not repeated: ... 2 1 | 0 1 2 ... n-1 | n-2 ...
        period = 2 * (n - 1)
        x %= period
        return x if x < n else period - x
    if mode == "symmetric":  # half-sample mirror, edge repeated: ... 1 0 | 0 1 ... n-1 | n-1 ...
        period = 2 * n
        x %= period
        return x if x < n else period - 1 - x
    raise ValueError(f"unknown padding mode {mode!r}; expected one of {PADDING_MODES}")


def _mirror_array(x: np.ndarray, n: int, mode: str) -> np.ndarray:
    """:func:`mirror` over an integer array; -1 where a constant is read."""
    inside = (x >= 0) & (x < n)
    if mode == "zeros":
        return np.where(inside, x, -1)
    if mode == "replicate":
        return np.clip(x, 0, n - 1)
    if mode == "circular":
        return x % n
    if n == 1:
        return np.zeros_like(x)
    if mode == "reflect":
        period = 2 * (n - 1)
        x = x % period
        return np.where(x < n, x, period - x)
    if mode == "symmetric":
        period = 2 * n
        x = x % period
        return np.where(x < n, x, period - 1 - x)
    raise ValueError(f"unknown padding mode {mode!r}; expected one of {PADDING_MODES}")


_CACHE_ENTRIES = 1 << 20  # matrices up to this many entries (8 MiB) are cached; larger ones are rebuilt


def _cached(build):
    """Cache ``matrix(n_in, n_out)`` per (axis op, n_in, n_out); the shared result is read-only.

    Every layer of a ResNet re-uses a handful of (op, size) pairs, so the pathway
    engine builds each matrix once. Large matrices (long 1-D inputs) are not kept:
    a deep net of them would hold gigabytes.
    """
    @functools.lru_cache(maxsize=1024)
    def cached(op, n_in: int, n_out: int) -> np.ndarray:
        m = build(op, n_in, n_out)
        m.setflags(write=False)
        return m

    @functools.wraps(build)
    def matrix(self, n_in: int, n_out: int) -> np.ndarray:
        n_in, n_out = int(n_in), int(n_out)
        if n_in * n_out > _CACHE_ENTRIES:
            return build(self, n_in, n_out)
        return cached(self, n_in, n_out)

    matrix.cache_clear = cached.cache_clear  # (benchmarks time a cold start)
    return matrix


@functools.lru_cache(maxsize=1024)
def nonzeros(op, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The non-zero entries of ``op.matrix(n_in, n_out)`` as (rows o, columns i, values), sorted by
    column then row, built without the dense matrix for windows and adaptive pools.

    Their number grows with the input length rather than its square, which is what
    the pathway engine needs on long 1-D inputs. The arrays are read-only.
    """
    n_in, n_out = int(n_in), int(n_out)
    if isinstance(op, Window):
        x = np.arange(n_out)[:, None] * op.stride + np.arange(op.kernel)[None, :] * op.dilation - op.pad[0]
        i = _mirror_array(x, n_in, op.mode)
        o = np.broadcast_to(np.arange(n_out)[:, None], i.shape)
        read = i >= 0
        key = i[read].astype(np.int64) * n_out + o[read]
        key, count = unique(key, return_counts=True)  # sorted by column, then row; repeats summed
        cols, rows, vals = key // n_out, key % n_out, count.astype(np.int64)
    elif isinstance(op, Transposed):
        rows, cols = op._pairs(n_in, n_out)  # each (o, i) at most once, already sorted by column then row
        vals = np.ones(rows.size, dtype=np.int64)
    elif isinstance(op, Adaptive):
        o = np.arange(n_out)
        lo, hi = (o * n_in) // n_out, -(-((o + 1) * n_in) // n_out)
        rows = np.repeat(o, hi - lo)
        cols = np.concatenate([np.arange(a, b) for a, b in zip(lo.tolist(), hi.tolist())]) if n_out else o
        order = np.lexsort((rows, cols))
        rows, cols = rows[order], cols[order]
        vals = np.ones(rows.size, dtype=np.int64)
    elif isinstance(op, (Flat, Table, Resample)):  # O(non-zeros), never the dense positions² matrix
        rows, cols, vals = op._nonzeros(n_in, n_out)
    else:
        m = op.matrix(n_in, n_out)
        cols, rows = np.nonzero(m.T)
        vals = m[rows, cols].astype(np.int64)
    out = (np.ascontiguousarray(rows, dtype=np.int64), np.ascontiguousarray(cols, dtype=np.int64),
           np.ascontiguousarray(vals))
    for a in out:
        a.setflags(write=False)
    return out


@dataclass(frozen=True)
class Window:
    """A sliding window (convolution tap set, pooling window or explicit padding).

    Output ``o`` reads taps ``o*stride + t*dilation - pad[0]`` for ``t < kernel``;
    taps outside the input are resolved by ``mode``. Padding layers are windows
    of size 1.
    """

    kernel: int = 1
    stride: int = 1
    dilation: int = 1
    pad: tuple[int, int] = (0, 0)
    mode: str = "zeros"
    ceil_mode: bool = False

    @property
    def extent(self) -> int:
        return (self.kernel - 1) * self.dilation + 1

    def out_size(self, n_in: int) -> int:
        """Output length for input length ``n_in`` (PyTorch's rule, ceil_mode included)."""
        span = n_in + self.pad[0] + self.pad[1] - self.extent
        if span < 0:
            return 0
        if not self.ceil_mode:
            return span // self.stride + 1
        n = -(-span // self.stride) + 1
        if (n - 1) * self.stride >= n_in + self.pad[0]:  # last window must start inside
            n -= 1
        return n

    def taps(self, o: int, n_in: int):
        """Input indices read by output ``o`` (with repeats); constants omitted."""
        for t in range(self.kernel):
            i = mirror(o * self.stride + t * self.dilation - self.pad[0], n_in, self.mode)
            if i is not None:
                yield i

    @_cached
    def matrix(self, n_in: int, n_out: int) -> np.ndarray:
        if self.mode == "zeros":  # each tap a strided diagonal of ones (distinct taps of a row read distinct inputs)
            m = np.zeros((n_out, n_in), dtype=np.int64)
            flat, step = m.reshape(-1), n_in + self.stride  # entry (o, o*stride + off) is flat[o*step + off]
            for t in range(self.kernel):
                off = t * self.dilation - self.pad[0]
                lo, hi = max(0, -(off // self.stride)), min(n_out, (n_in - 1 - off) // self.stride + 1)
                if hi > lo:
                    flat[lo * step + off:(hi - 1) * step + off + 1:step] += 1
            return m
        x = np.arange(n_out)[:, None] * self.stride + np.arange(self.kernel)[None, :] * self.dilation - self.pad[0]
        i = _mirror_array(x, n_in, self.mode)
        o = np.broadcast_to(np.arange(n_out)[:, None], i.shape)
        read = i >= 0
        m = np.zeros((n_out, n_in), dtype=np.int64)
        np.add.at(m, (o[read], i[read]), 1)  # repeated taps (mirrored padding) count twice
        return m

    def affine(self, n_in: int, n_out: int):
        return self.extent, self.stride, self.pad[0]

    def unread(self, n_in: int, n_out: int) -> int:
        """How many trailing padded positions (padding or input) no window reads."""
        last = (n_out - 1) * self.stride + self.extent - 1  # in padded coordinates
        return max(0, n_in + self.pad[0] + self.pad[1] - 1 - last)


class _Pairs:
    """An op given by the (output, input) pairs it connects once each (``self._pairs``)."""

    @_cached
    def matrix(self, n_in: int, n_out: int) -> np.ndarray:
        m = np.zeros((n_out, n_in), dtype=np.int64)
        rows, cols = self._pairs(n_in, n_out)
        m[rows, cols] = 1
        return m

    def _nonzeros(self, n_in: int, n_out: int):
        rows, cols = self._pairs(n_in, n_out)
        return _summed(rows, cols, np.ones(rows.size, dtype=np.int64), n_out)


@dataclass(frozen=True)
class Transposed(_Pairs):
    """A transposed convolution (``ConvTranspose1d/2d``, ``F.conv_transpose1d/2d``) along one axis.

    Input ``i`` is scattered to outputs ``o = i*stride - pad + t*dilation`` for every tap
    ``t < kernel``; output positions outside ``[0, n_out)`` are cropped (that is what
    ``padding`` does here), and ``output_padding`` only lengthens the output (its extra
    positions read whatever taps land there). Equivalently, output ``o`` reads every input
    ``i`` with ``o + pad - i*stride`` a multiple of ``dilation`` in ``[0, (kernel-1)*dilation]``.
    A tap lands on a pair ``(o, i)`` at most once, so the matrix is 0/1.
    """

    kernel: int = 1
    stride: int = 1
    dilation: int = 1
    pad: int = 0
    output_padding: int = 0

    @property
    def extent(self) -> int:
        """Output positions one input position is scattered over."""
        return (self.kernel - 1) * self.dilation + 1

    def out_size(self, n_in: int) -> int:
        """Output length for input length ``n_in`` (PyTorch's rule)."""
        return max(0, (n_in - 1) * self.stride - 2 * self.pad + self.extent + self.output_padding)

    def _pairs(self, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
        """``(o, i)`` of every tap that lands inside the output, sorted by ``i`` then ``o``."""
        i = np.arange(n_in, dtype=np.int64)[:, None]
        o = i * self.stride - self.pad + np.arange(self.kernel, dtype=np.int64)[None, :] * self.dilation
        inside = (o >= 0) & (o < n_out)
        return o[inside], np.broadcast_to(i, o.shape)[inside]


    def affine(self, n_in: int, n_out: int):
        """A sliding window with a fractional stride: output ``o`` lies over the input interval
        ``[o/stride - offset, o/stride - offset + extent - 1]`` = ``[(o + pad - (kernel-1)*dilation)/stride,
        (o + pad)/stride]``, and reads the input positions in it whose tap index is whole
        (every integer in it when ``dilation == 1``). Returns Fractions; whole numbers when ``stride == 1``
        (then it is a convolution with padding ``(kernel-1)*dilation - pad``)."""
        span = Fraction((self.kernel - 1) * self.dilation, self.stride)
        return span + 1, Fraction(1, self.stride), Fraction((self.kernel - 1) * self.dilation - self.pad, self.stride)


@dataclass(frozen=True)
class Adaptive:
    """Adaptive pooling (and global means): output ``o`` averages a computed window."""

    def bounds(self, o: int, n_in: int, n_out: int) -> tuple[int, int]:
        return (o * n_in) // n_out, -(-((o + 1) * n_in) // n_out)

    def out_size(self, n_in: int, n_out: int) -> int:
        return n_out

    @_cached
    def matrix(self, n_in: int, n_out: int) -> np.ndarray:
        o = np.arange(n_out)[:, None]
        lo, hi = (o * n_in) // n_out, -(-((o + 1) * n_in) // n_out)
        i = np.arange(n_in)[None, :]
        return ((i >= lo) & (i < hi)).astype(np.int64)

    def affine(self, n_in: int, n_out: int):
        if n_in % n_out == 0:
            k = n_in // n_out
            return k, k, 0
        return None


@dataclass(frozen=True)
class Resample(_Pairs):
    """Upsampling/interpolation; ``scale`` is input length / output length as PyTorch uses it.

    Source positions are computed in exact rational arithmetic (``scale`` read back as the
    fraction it stands for, e.g. ``1/3.7`` as 10/37), which is what PyTorch computes up to rounding:
    it agrees with PyTorch in float64 everywhere, except that PyTorch's rounding there can give a
    neighbour a weight of ~1e-17 (1e-8 in float32) where the exact weight is 0: such weights are
    not connections. In float32, PyTorch's nearest modes can also pick the neighbouring pixel when
    ``o * scale`` is a whole number (e.g. 26 samples resized to 22 or 44).
    """

    mode: str = "nearest"
    align_corners: bool = False
    scale: float | None = None

    def sources(self, o: int, n_in: int, n_out: int) -> list[int]:
        """Input indices with a non-zero interpolation weight for output ``o``."""
        rows, cols = self._pairs(n_in, n_out)
        return sorted(cols[rows == o].tolist())

    def _pairs(self, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
        """``(o, i)`` of every non-zero weight (one or two per output), in integer arithmetic on
        ``scale = p/q``: no floating-point rounding decides which pixel is read."""
        if self.scale is not None:
            r = Fraction(self.scale).limit_denominator(10 ** 6)
            p, q = r.numerator, r.denominator
        else:
            p, q = n_in, n_out
        o = np.arange(n_out, dtype=np.int64)
        if self.mode == "nearest":  # floor(o * p/q)
            return o, np.minimum(o * p // q, n_in - 1)
        if self.mode == "nearest-exact":  # floor((o + 1/2) * p/q)
            return o, np.minimum((2 * o + 1) * p // (2 * q), n_in - 1)
        if self.mode == "bicubic":
            return _bicubic_pairs(n_in, n_out, p, q, self.align_corners)
        if self.mode not in ("linear", "bilinear", "trilinear"):
            raise ValueError(f"interpolation mode {self.mode!r}")
        if n_out == n_in:  # PyTorch copies then, whatever the scale factor
            return o, o
        if self.align_corners:  # source o * (n_in - 1)/(n_out - 1) = num/den
            num, den = o * (n_in - 1), max(n_out - 1, 1)
        else:  # source (o + 1/2) * p/q - 1/2, clamped at 0
            num, den = np.maximum((2 * o + 1) * p - q, 0), 2 * q
        left = np.minimum(num // den, n_in - 1)
        both = (num % den != 0) & (left < n_in - 1)  # a fractional source between two pixels
        return np.concatenate([o, o[both]]), np.concatenate([left, left[both] + 1])


    def affine(self, n_in: int, n_out: int):
        return None


def _cubic_weight(d: Fraction) -> Fraction:
    """PyTorch's cubic convolution kernel (A = -0.75) at distance ``d``."""
    a, d = Fraction(-3, 4), abs(d)
    if d <= 1:
        return ((a + 2) * d - (a + 3)) * d * d + 1
    if d < 2:
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return Fraction(0)


def _bicubic_pairs(n_in: int, n_out: int, p: int, q: int, align_corners: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(o, i)`` of every non-zero bicubic weight, in exact rational arithmetic: the source ``x`` (not clamped, as
    PyTorch's cubic mode computes it), taps ``floor(x) - 1 … floor(x) + 2`` clamped to the image (a tap beyond
    the border reads the border pixel, its weight added to that pixel's), and a pixel is read where its summed
    weight is not zero (one tap when ``x`` is a whole number)."""
    rows, cols = [], []
    for o in range(n_out):
        if n_out == n_in:
            x = Fraction(o)
        elif align_corners:
            x = Fraction(o * (n_in - 1), max(n_out - 1, 1))
        else:
            x = Fraction((2 * o + 1) * p - q, 2 * q)
        base = math.floor(x)
        summed: dict[int, Fraction] = {}
        for k in range(base - 1, base + 3):
            i = min(max(k, 0), n_in - 1)
            summed[i] = summed.get(i, Fraction(0)) + _cubic_weight(x - k)
        for i in sorted(summed):
            if summed[i] != 0:
                rows.append(o)
                cols.append(i)
    return np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)


@dataclass(frozen=True)
class Broadcast:
    """A size-1 axis expanded to ``n_out`` positions (e.g. a squeeze-excitation gate)."""

    @_cached
    def matrix(self, n_in: int, n_out: int) -> np.ndarray:
        return np.ones((n_out, n_in), dtype=np.int64)

    def affine(self, n_in: int, n_out: int):
        return None


@dataclass(frozen=True)
class Table:
    """Fixed connections: output ``o`` reads input positions ``sources[o]`` (a position listed twice is
    read twice), e.g. the random global connections of a flattened feature map."""

    sources: tuple[tuple[int, ...], ...]

    @_cached
    def matrix(self, n_in: int, n_out: int) -> np.ndarray:
        if n_out != len(self.sources) or any(i >= n_in for row in self.sources for i in row):
            raise ValueError(f"Table of {len(self.sources)} outputs does not fit sizes {n_in} → {n_out}")
        m = np.zeros((n_out, n_in), dtype=np.int64)
        for o, row in enumerate(self.sources):
            for i in row:
                m[o, i] += 1
        return m

    def _nonzeros(self, n_in: int, n_out: int):
        if n_out != len(self.sources) or any(i >= n_in for row in self.sources for i in row):
            raise ValueError(f"Table of {len(self.sources)} outputs does not fit sizes {n_in} → {n_out}")
        rows, cols = _rows_cols(self.sources)
        return _summed(rows, cols, np.ones(rows.size, dtype=np.int64), n_out)

    def affine(self, n_in: int, n_out: int):
        return None


def _rows_cols(lists) -> tuple[np.ndarray, np.ndarray]:
    """``(o, i)`` pairs of per-output connection lists ``lists[o]`` = input positions (repeats kept)."""
    lengths = np.fromiter((len(r) for r in lists), dtype=np.int64, count=len(lists))
    cols = np.fromiter((i for r in lists for i in r), dtype=np.int64, count=int(lengths.sum()))
    return np.repeat(np.arange(len(lists), dtype=np.int64), lengths), cols


def _summed(rows, cols, vals, n_out: int):
    """Entries ``(rows, cols, vals)`` with repeats summed, sorted by column then row."""
    key, inverse = unique(cols * n_out + rows, return_inverse=True)
    total = np.bincount(inverse.ravel(), weights=vals, minlength=key.size).astype(np.int64)
    return key % n_out, key // n_out, total


@dataclass(frozen=True)
class Flat:
    """A spatial op that does not factor by axis, on the flattened (row-major) grid: the sliding
    ``windows`` (one per axis, for sizes ``in_size`` → ``out_size``; none: no window connections, as for a
    transposed or attended grid) plus fixed ``extra`` connections,
    ``extra[o]`` = flat input positions read by flat output ``o`` (random global connections)."""

    windows: tuple
    extra: tuple[tuple[int, ...], ...]
    in_size: tuple[int, ...]
    out_size: tuple[int, ...]

    @_cached
    def matrix(self, n_in: int, n_out: int) -> np.ndarray:
        if (n_in, n_out) != (math.prod(self.in_size), math.prod(self.out_size)):
            raise ValueError(f"Flat op for {self.in_size} → {self.out_size} used for sizes {n_in} → {n_out}")
        m = np.ones((1, 1), dtype=np.int64)
        for w, i, o in zip(self.windows, self.in_size, self.out_size):
            m = np.kron(m, w.matrix(i, o))
        m = m.copy() if self.windows else np.zeros((n_out, n_in), dtype=np.int64)  # no windows: the lists only
        for o, row in enumerate(self.extra):
            for i in row:
                m[o, i] += 1
        return m

    def _nonzeros(self, n_in: int, n_out: int):
        """The windows' Kronecker product and the extra connections as sparse entries: memory grows
        with positions × (taps + extra connections), not positions²."""
        if (n_in, n_out) != (math.prod(self.in_size), math.prod(self.out_size)):
            raise ValueError(f"Flat op for {self.in_size} → {self.out_size} used for sizes {n_in} → {n_out}")
        rows = cols = np.zeros(1 if self.windows else 0, dtype=np.int64)
        vals = np.ones(rows.size, dtype=np.int64)
        for w, i, o in zip(self.windows, self.in_size, self.out_size):
            r, c, v = nonzeros(w, i, o)
            rows = (rows[:, None] * o + r[None, :]).ravel()
            cols = (cols[:, None] * i + c[None, :]).ravel()
            vals = (vals[:, None] * v[None, :]).ravel()
        er, ec = _rows_cols(self.extra)
        return _summed(np.concatenate([rows, er]), np.concatenate([cols, ec]),
                       np.concatenate([vals, np.ones(er.size, dtype=np.int64)]), n_out)

    def affine(self, n_in: int, n_out: int):
        return None
