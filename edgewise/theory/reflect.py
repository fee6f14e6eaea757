"""Reflect padding: exact counts by folding a circle walk, the bounded ratio, its limit and mixing depth."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..errors import EdgewiseError
from ._stack import _int, _kld, _odd, center_edge_ratio
from .valid import _row


def _reflect_checks(k, n, what):
    k, _, _ = _kld(k, 0)
    n = _int("width n", n, 1)
    _odd(k, what, "reflect")
    if n < 2 and k > 1:
        raise EdgewiseError(f"{what}: width n={n} is too small for reflect padding (needs n ≥ 2)")
    r = (k - 1) // 2
    if r > n - 1:
        raise EdgewiseError(f"{what}: a {k}-tap kernel pads r={r} on each side, but reflect padding needs "
                            f"r ≤ n−1 = {n - 1} (PyTorch refuses wider reflections); use n ≥ {r + 1}")
    return k, n


def reflect_counts(k: int, n: int, L: int) -> list[int]:
    """Exact ``to="all"`` counts under reflect padding, via the fold of a walk on a circle.

    Reflection maps the line onto a circle of length ``P = 2(n−1)`` folded onto
    ``[0, n−1]`` (``f(x) = x mod P`` reflected at ``n−1``). The unfolded walk is an
    ordinary walk on ℤ and the fold is lumpable (the circle walk commutes with
    ``x ↦ −x``), so ``count[i] = Σ_{o=0}^{n−1} Σ_j row[j]·[f(o + j − Lr) = i]`` with the
    multinomial ``row`` of :func:`multinomial_row`: a closed form in binomial-like
    coefficients, independent of the transfer matrix.

    Domain: odd ``k``, ``n ≥ 2``, ``r ≤ n − 1`` (the reflection PyTorch accepts), ``L ≥ 0``.
    """
    k, n = _reflect_checks(k, n, "reflect_counts")
    L = _int("depth L", L, 0)
    if n == 1:
        return [k ** L]
    r, P = (k - 1) // 2, 2 * (n - 1)
    row = _row(k, L)
    # walks from o end at o + j − Lr; bucket the row by its end modulo P, then fold
    bucket = [0] * P
    for j, v in enumerate(row):
        bucket[(j - L * r) % P] += v
    out = [0] * n
    for o in range(n):
        for x, v in enumerate(bucket):
            y = (o + x) % P
            out[y if y < n else P - y] += v
    return out


def reflect_ratio(k: int, n: int, L: int) -> Fraction:
    """Exact centre/edge ratio under reflect padding (from :func:`reflect_counts`)."""
    return center_edge_ratio(reflect_counts(k, n, L))


def reflect_stationary(n: int) -> list[int]:
    """Limit shape of reflect-padding counts: ``∝ (1, 2, 2, …, 2, 1)`` (``[1]`` for ``n = 1``).

    The circle walk has the uniform stationary distribution; the fold sends two circle
    sites onto each interior position and one onto each end.
    """
    n = _int("width n", n, 1)
    return [1] if n == 1 else [1] + [2] * (n - 2) + [1]


def reflect_ratio_limit(k: int, n: int, dims: int = 1) -> Fraction:
    """``L → ∞`` limit of reflect-padding centre/edge: 2 in 1-D, 4 at a 2-D corner (2 at a mid-edge).

    Args:
        k: odd taps; n: width; dims: 1 (centre/edge) or 2 (centre/corner).

    Returns:
        ``Fraction(2)**dims`` for ``n ≥ 3``, 1 for ``n ≤ 2`` (the centre is an end) or ``k = 1``.

    Domain: odd ``k``, ``r ≤ n−1``. The ratio is bounded at every depth but not monotone:
    it can overshoot the limit slightly (e.g. ``k=5, n=4``).
    """
    k, n = _reflect_checks(k, n, "reflect_ratio_limit")
    dims = _int("dims", dims, 1)
    if dims > 2:
        raise EdgewiseError(f"reflect_ratio_limit: dims must be 1 or 2, got {dims}")
    if k == 1 or n <= 2:
        return Fraction(1)
    return Fraction(2) ** dims


def reflect_mixing_depth(k: int, n: int) -> float:
    """Depth per e-fold of the approach to :func:`reflect_ratio_limit`: ``1/ln(1/max|φ(2πj/P)|)``.

    The fold's eigenfunctions are ``cos(πji/(n−1))`` with eigenvalues ``k·φ(πj/(n−1))``
    (``φ`` the step characteristic function, ``P = 2(n−1)``); the all-ones start is
    mirror-symmetric, so only even ``j ≥ 2`` enter. For ``n ≫ k`` this is
    ``≈ (n−1)²/(2π²σ²)``.

    Returns:
        the depth as a float (0.0 when there is nothing to mix).

    Domain: as :func:`reflect_counts`.
    """
    k, n = _reflect_checks(k, n, "reflect_mixing_depth")
    r = (k - 1) // 2
    if k == 1 or n <= 2:
        return 0.0
    js = np.arange(2, n, 2)
    if js.size == 0:
        return 0.0
    theta = np.pi * js / (n - 1)
    phi = (1 + 2 * sum(np.cos(s * theta) for s in range(1, r + 1))) / k
    top = float(np.max(np.abs(phi)))
    return 0.0 if top < 1e-12 else 1.0 / math.log(1.0 / top)
