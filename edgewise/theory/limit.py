"""The deep limit of centre/edge for any stack that keeps its width: a ratio of Perron-vector entries.

A stack of ``L`` identical layers counts ``(Aᵀ)ᴸ 1``. Where one layer keeps the width (``A`` square) and every
position reaches every other in some number of layers, all of them in the same number from then on (``A``
primitive: some power of it has no zero), Perron and Frobenius give ``(Aᵀ)ᴸ 1 / λᴸ → (u·1) v``: ``λ`` the
largest eigenvalue of ``Aᵀ``, ``v`` its positive eigenvector, ``u`` the matching one of ``A``. The centre/edge ratio
then tends to ``v[c] / mean(v[0], v[n−1])`` whatever the padding rule, even kernels and asymmetric paddings
included, and gets one e-fold closer about every ``1/ln(λ/|λ₂|)`` layers (``λ₂`` the next largest eigenvalue in
modulus). Where ``A`` is not primitive (a one-sided window whose counts drift to one end, dilation's separate
residue classes) the ratio can tend to 0 or ∞, or keep oscillating, and no limit is given.

:func:`edgewise.theory.same_ratio_limit` and :func:`edgewise.theory.reflect_ratio_limit` are this limit's closed
forms for odd kernels; this module covers the paddings and kernels they do not.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from ._stack import _int, _kld, _out_size, _padding, transfer_matrix

__all__ = ["RatioLimit", "ratio_limit", "MAX_WIDTH"]

#: widths above this get no limit (the eigenvalues and squarings of a dense n×n matrix: 0.2 s at 512)
MAX_WIDTH = 512


@dataclass(frozen=True)
class RatioLimit:
    """``limit``: centre/edge as ``L → ∞``; ``mixing_depth``: at most this many layers per e-fold of the approach to
    it, asymptotically (``1/ln(λ/|λ₂|)``; the start vector's weight on the slower modes sets how long it takes to get
    there; 0 where there is no second eigenvalue)."""

    limit: float
    mixing_depth: float


def _primitive(a: np.ndarray) -> bool:
    """Whether some power of the non-negative square matrix ``a`` is positive everywhere: its graph (``i → j``
    where ``a[i, j] > 0``) strongly connected, with cycle lengths of greatest common divisor 1 (the gcd of
    ``level[i] + 1 − level[j]`` over the edges, levels by breadth-first search from one node)."""
    n = a.shape[0]
    rows, cols = np.nonzero(a)
    level = _levels(n, rows, cols)
    if level is None or _levels(n, cols, rows) is None:
        return False
    return int(np.gcd.reduce(np.abs(level[rows] + 1 - level[cols]))) == 1


def _levels(n: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray | None:
    """Breadth-first distances from node 0 along the edges ``rows[e] → cols[e]``; None if some node is not
    reached."""
    order = np.argsort(rows, kind="stable")
    starts = np.searchsorted(rows[order], np.arange(n + 1))
    targets = cols[order].tolist()
    level = [-1] * n
    level[0], frontier = 0, [0]
    while frontier:
        nxt = []
        for i in frontier:
            for j in targets[starts[i]:starts[i + 1]]:
                if level[j] < 0:
                    level[j] = level[i] + 1
                    nxt.append(j)
        frontier = nxt
    return None if min(level) < 0 else np.asarray(level)


@functools.lru_cache(maxsize=256)
def ratio_limit(padding: str, k: int, n: int, dilation: int = 1) -> RatioLimit | None:
    """centre/edge of ``L`` stacked 1-D layers (``k`` taps, dilation ``d``, stride 1, ``padding``) on ``n``
    positions as ``L → ∞``, from the Perron vector of one layer's transposed transfer matrix.

    Returns:
        :class:`RatioLimit`, or None where the layer changes the width (``valid``, ``full``), its matrix is not
        primitive (no single limit), or ``n`` is above :data:`MAX_WIDTH`.

    Domain: any ``k``, ``d``, padding of :data:`edgewise.theory.PADDINGS`; ``n ≤`` :data:`MAX_WIDTH`.
    """
    padding = _padding(padding)
    k, _, d = _kld(k, 0, dilation)
    n = _int("width n", n, 1)
    if n > MAX_WIDTH or _out_size(padding, k, n, d, 1) != n:
        return None
    if n == 1:
        return RatioLimit(1.0, 0.0)
    a = transfer_matrix(padding, k, n, d).astype(np.float64)
    if not _primitive(a):
        return None
    values = np.linalg.eigvals(a)
    top = int(np.argmax(values.real))  # (the Perron value: real, simple, and the largest in modulus)
    rest = np.delete(np.abs(values), top)
    second, lam = (float(rest.max()) if rest.size else 0.0), float(values[top].real)
    mixing = 0.0 if second == 0 else math.inf if second >= lam else 1.0 / math.log(lam / second)
    v = _deep_counts(a)
    c = (n - 1) // 2
    return RatioLimit(float(v[c] / ((v[0] + v[-1]) / 2)), mixing)


def _deep_counts(a: np.ndarray) -> np.ndarray:
    """The direction of ``(Aᵀ)ᴸ 1`` as L → ∞ (largest entry 1): ``Aᵀ`` squared (and scaled to a largest entry of 1)
    until ``(Aᵀ)^(2^s) 1`` stops changing, at most 2**60 layers. Sums and products of non-negative numbers keep
    each entry's relative precision, so entries far below the largest (1e-12 of it at an even kernel's far end)
    come out right, where an eigenvector solver's cancellations would leave them at its absolute error."""
    m, before = a.T.copy(), None
    for _ in range(60):
        m = m @ m
        m /= m.max()
        v = m.sum(axis=1)
        v /= v.max()
        if before is not None and np.allclose(v, before, rtol=1e-13, atol=0.0):
            break
        before = v
    return v
