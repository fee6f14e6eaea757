"""Same (zero) padding: exact counts and ratio, half-line survival, the small-depth √L law and its domain."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..errors import EdgewiseError
from ._stack import _int, _kld, _odd, center_edge_ratio
from .survival import _sigma2, survival_constant


def _same_walk(k: int, n: int, L: int) -> list[int]:
    """Walks of length L with steps in {−r..r} that stay in [0, n−1], from each start: (Bᴸ 1)."""
    r = (k - 1) // 2
    v = [1] * n
    for _ in range(L):
        prefix = [0]
        for x in v:
            prefix.append(prefix[-1] + x)
        v = [prefix[min(n, i + r + 1)] - prefix[max(0, i - r)] for i in range(n)]
    return v


def _classes(n: int, d: int) -> list[list[int]]:
    return [list(range(j, n, d)) for j in range(min(d, n))]


def same_counts(k: int, n: int, L: int, dilation: int = 1) -> list[int]:
    """Exact ``to="all"`` counts under same zero padding: killed walks on ``[0, n−1]``.

    ``count[i]`` = number of length-``L`` walks from ``i`` with steps in ``{−r..r}``
    (``r=(k−1)/2``) that never leave ``[0, n−1]`` = ``k**L · P(survive)``, computed as
    ``Bᴸ 1`` with the banded 0/1 matrix ``B`` (integer transfer-matrix powers). With
    dilation ``d`` the positions split into ``d`` residue classes ``j, j+d, …``, each an
    undilated walk on its ``⌈(n−j)/d⌉`` sites.

    Args:
        k: odd number of taps; n: width; L: depth; dilation: ``d``.

    Returns:
        list of Python ints over the ``n`` input positions.

    Domain: odd ``k`` (even kernels pad lopsidedly; use :func:`counts`), any ``n ≥ 1``, ``L ≥ 0``.
    """
    k, L, d = _kld(k, L, dilation)
    n = _int("width n", n, 1)
    _odd(k, "same_counts")
    out = [0] * n
    for cls in _classes(n, d):
        for pos, v in zip(cls, _same_walk(k, len(cls), L)):
            out[pos] = v
    return out


def same_ratio(k: int, n: int, L: int, dilation: int = 1) -> Fraction:
    """Exact centre/edge ratio under same zero padding (from :func:`same_counts`).

    Domain: odd ``k``; any ``n``, ``L``, ``dilation``.
    """
    return center_edge_ratio(same_counts(k, n, L, dilation))


def half_line_survival(k: int, L: int) -> Fraction:
    """Exact ``P(τ > L)``: a walk from 0 with uniform steps in ``{−r..r}`` stays ``≥ 0`` for ``L`` steps.

    Under same padding this is edge count / ``k**L`` whenever the far wall is out of
    reach (``n ≥ L·r + 1``); with the centre out of reach of both walls too
    (``n ≥ 2Lr+1``) the exact ratio is ``1/P(τ > L)``.

    Returns:
        :class:`fractions.Fraction` (1 for ``k = 1``).

    Domain: odd ``k``, ``L ≥ 0``.
    """
    k, L, _ = _kld(k, L)
    _odd(k, "half_line_survival")
    r = (k - 1) // 2
    return Fraction(_same_walk(k, L * r + 1, L)[0], k ** L)


def same_ratio_small_depth(k: int, L: int) -> float:
    """Small-depth law of same padding: centre/edge ``≈ √(πL)/C_k`` (a √L law).

    The centre's walks are not yet killed (count ``≈ k**L``) and the edge's are
    killed at one wall only: ratio ``≈ 1/P(τ>L) ≈ √(πL)/C_k``, :func:`survival_constant`.

    Returns:
        the law's value (1.0 for ``k = 1``).

    Domain: odd ``k``, ``L ≥ 1``; accurate while ``σ²L ≪ n²`` (``σ² = (k²−1)/12``) and once
    ``L`` is past a few layers (the relative correction is ``O(1/L)``);
    :func:`same_law_domain` gives the measured range for a tolerance.
    """
    k, L, _ = _kld(k, L, lmin=1)
    _odd(k, "same_ratio_small_depth")
    if k == 1:
        return 1.0
    return math.sqrt(math.pi * L) / survival_constant(k)


def same_law_domain(k: int, n: int, rtol: float = 0.05, max_depth: int | None = None) -> tuple[int, int] | None:
    """Depth range where the exact same-padding ratio is within ``rtol`` of :func:`same_ratio_small_depth`.

    Scans ``L = 1 … max_depth`` (default ``⌈n²/σ²⌉``) with the exact counts and returns the
    longest contiguous run ``(L_min, L_max)`` inside the tolerance, or None.
    Quantifies "valid while ``σ²L ≪ n²``" for one ``(k, n)``; see ``docs/theory.md``.
    """
    k, _, _ = _kld(k, 0)
    n = _int("width n", n, 1)
    _odd(k, "same_law_domain")
    if not 0 < rtol < 1:
        raise EdgewiseError(f"same_law_domain: rtol must lie in (0, 1), got {rtol}")
    if k == 1:
        return None
    top = max_depth if max_depth is not None else math.ceil(n * n / _sigma2(k))
    top = _int("max_depth", top, 1)
    c, C, r = (n - 1) // 2, survival_constant(k), (k - 1) // 2
    v, best, run = np.ones(n), None, None
    for L in range(1, top + 1):
        prefix = np.concatenate([[0.0], np.cumsum(v)])
        i = np.arange(n)
        v = (prefix[np.minimum(n, i + r + 1)] - prefix[np.maximum(0, i - r)]) / k  # scaled: ratio unchanged
        exact = v[c] / ((v[0] + v[-1]) / 2)
        if abs(exact / (math.sqrt(math.pi * L) / C) - 1) <= rtol:
            run = (run[0], L) if run else (L, L)
            if best is None or run[1] - run[0] > best[1] - best[0]:
                best = run
        else:
            run = None
    return best
