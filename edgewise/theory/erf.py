"""Effective receptive field: variance and spread of the ``to="center"`` map, and its distance from a normal law."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Sequence

from ..errors import EdgewiseError
from ._stack import _int, _kld


def erf_variance(k: int, L: int, dilation: int = 1) -> Fraction:
    """Variance (per axis) of the normalised ``to="center"`` count map: ``L·d²(k²−1)/12``.

    The map is the distribution of a sum of ``L`` independent uniform taps on
    ``{0, d, …, (k−1)d}`` (variance ``d²(k²−1)/12`` each).

    Domain: the field lies inside the image (valid padding; same padding with
    ``n ≥ L·d(k−1)+1``), any ``k`` (even included).
    """
    k, L, d = _kld(k, L, dilation)
    return Fraction(L * d * d * (k * k - 1), 12)


def erf_std(k: int, L: int, dilation: int = 1) -> float:
    """Standard deviation of the effective receptive field: ``d·√(L(k²−1)/12)`` (grows like √L)."""
    return math.sqrt(erf_variance(k, L, dilation))


def theoretical_rf(k: int, L: int, dilation: int = 1) -> int:
    """Theoretical receptive field of ``L`` stride-1 layers: ``L·d·(k−1)+1`` (grows like L)."""
    k, L, d = _kld(k, L, dilation)
    return L * d * (k - 1) + 1


def erf_fraction(k: int, L: int, dilation: int = 1) -> float:
    """``erf_std / theoretical_rf``: ``→ √((k+1)/(12(k−1)))/√L``, an O(1/√L) fraction of the field.

    Domain: ``k ≥ 2``, ``L ≥ 1``.
    """
    k, L, d = _kld(k, L, dilation, lmin=1)
    if k == 1:
        raise EdgewiseError("erf_fraction: k=1 has a one-pixel field and zero spread; use k ≥ 2")
    return erf_std(k, L, d) / theoretical_rf(k, L, d)


def map_moments(values: Sequence[int]) -> tuple[Fraction, Fraction]:
    """Exact mean position and variance of a 1-D count map read as a distribution.

    Returns:
        ``(mean, variance)`` as Fractions.
    """
    vals = [int(v) for v in values]
    total = sum(vals)
    if total <= 0 or min(vals) < 0:
        raise EdgewiseError("map_moments: the map needs non-negative counts with a positive total")
    mean = Fraction(sum(i * v for i, v in enumerate(vals)), total)
    var = Fraction(sum(i * i * v for i, v in enumerate(vals)), total) - mean * mean
    return mean, var


def _phi_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def gaussian_distance(values: Sequence[int], span: int = 1) -> tuple[float, float]:
    """How far a 1-D count map is from the normal law with its own mean and variance.

    Args:
        values: the count map (e.g. ``pathways(..., to="center").counts``).
        span: lattice spacing of the map's support (the dilation).

    Returns:
        ``(cdf, local)``: the largest CDF difference at the half-way points between
        support sites (continuity-corrected Kolmogorov distance, ``O(1/L)`` for a
        symmetric walk) and the largest difference ``|σ·p_j/span − φ((j−μ)/σ)|`` between
        the scaled point masses and the normal density (local CLT, ``O(1/L)``).

    Domain: maps supported on one residue class modulo ``span``.
    """
    span = _int("span", span, 1)
    mean, var = map_moments(values)
    if var == 0:
        raise EdgewiseError("gaussian_distance: the map is a single point (zero variance)")
    vals = [int(v) for v in values]
    total, mu, sd = sum(vals), float(mean), math.sqrt(var)
    first = next(i for i, v in enumerate(vals) if v)
    cdf, local, run = 0.0, 0.0, 0
    for j in range(first, len(vals), span):
        run += vals[j]
        cdf = max(cdf, abs(run / total - _phi_cdf((j + span / 2 - mu) / sd)))
        dens = math.exp(-0.5 * ((j - mu) / sd) ** 2) / math.sqrt(2 * math.pi)
        local = max(local, abs(sd * vals[j] / total / span - dens))
    return cdf, local
