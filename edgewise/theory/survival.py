"""The walk killed at one wall: the Sparre Andersen constant ``C_k`` and the boundary layer ``(a_k, h_k(0))``."""

from __future__ import annotations

import functools
import math

import numpy as np

from ..errors import EdgewiseError
from ._stack import _int, _odd


def _sigma2(k: int) -> float:
    return (k * k - 1) / 12.0


def _hurwitz(s: float, a: int) -> float:
    """Σ_{m ≥ a} m^{−s} by Euler–Maclaurin (a ≥ 10 gives ~1e-15 relative accuracy)."""
    f = a ** -s
    d1 = -s * a ** (-s - 1)
    d3 = -s * (s + 1) * (s + 2) * a ** (-s - 3)
    return a ** (1 - s) / (s - 1) + f / 2 - d1 / 12 + d3 / 720


@functools.lru_cache(maxsize=4)
def _gauss_legendre(m: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(m)


@functools.lru_cache(maxsize=64)
def survival_constant(k: int, method: str = "roots", terms: int = 2000) -> float:
    """The Sparre Andersen constant ``C_k`` in ``P(τ > L) ~ C_k/√(πL)`` for uniform steps in ``{−r..r}``.

    For a symmetric walk, ``Σ_L P(τ>L) s^L = exp(Σ_m s^m P(S_m ≥ 0)/m)`` and
    ``P(S_m ≥ 0) = ½ + ½P(S_m = 0)``, so the generating function is
    ``(1−s)^{−1/2} · exp(Σ_m s^m P(S_m=0)/(2m))``; a Tauberian argument gives
    ``C_k = exp(Σ_{m≥1} P(S_m = 0)/(2m))``. Two independent evaluations:

    * ``"series"``: ``P(S_m=0)`` from the exact step distribution for ``m ≤ terms``,
      plus the tail from the local CLT with its first Edgeworth correction,
      ``P(S_m=0) ≈ (2πσ²m)^{−1/2}(1 + κ₄/(8σ⁴m))``, ``κ₄ = −(k⁴−1)/120``.
    * ``"integral"``: ``Σ_m φ^m/(2m) = −½ log(1−φ)`` turns the sum into
      ``log C_k = −(1/2π)∫_0^π log(1 − φ(θ)) dθ``, ``φ`` the step characteristic
      function; the ``log θ²`` singularity is integrated in closed form and the
      smooth rest by 256-point Gauss–Legendre.
    * ``"roots"`` (closed form): ``k(1−φ(θ)) = |Q(e^{iθ})|`` with
      ``Q(z) = 1 + z + … + z^{k−1} − k z^r = (z−1)² R(z)``, ``R`` monic and palindromic;
      Jensen's formula turns the integral into ``C_k² = k · Π_{|ρ|<1} |ρ|`` over the roots of
      ``R`` inside the unit circle (none lie on it). ``C_3 = √3``, ``C_5 = (5−√5)/2``.

    Args:
        k: odd number of taps ≥ 3.
        method: ``"roots"`` (default), ``"integral"`` (both ~1e-15) or ``"series"`` (~1e-11 with
            the default terms).
        terms: number of exact terms of the series.

    Returns:
        ``C_k`` as a float.
    """
    k = _int("kernel size k", k, 1)
    _odd(k, "survival_constant")
    if k == 1:
        raise EdgewiseError("survival_constant: k=1 is the identity (no randomness, nothing is killed); "
                            "the ratio is 1 at every depth. Use k ≥ 3")
    r = (k - 1) // 2
    s2 = _sigma2(k)
    if method == "roots":
        q = np.ones(k)
        q[r] -= k
        rem_q, rem = np.polydiv(q, [1.0, -2.0, 1.0])
        roots = np.roots(rem_q) if rem_q.size > 1 else np.zeros(0)
        inside = np.abs(roots[np.abs(roots) < 1])
        return math.sqrt(k * float(np.prod(inside)))
    if method == "integral":
        x, w = _gauss_legendre(256)
        th = (x + 1) * (math.pi / 2)
        w = w * (math.pi / 2)
        one_minus_phi = (4.0 / k) * sum(np.sin(s * th / 2) ** 2 for s in range(1, r + 1))  # no cancellation
        smooth = float(np.sum(w * np.log(one_minus_phi / (s2 * th ** 2 / 2))))
        log_c = -smooth / (2 * math.pi) - 0.5 * math.log(s2 / 2) - (math.log(math.pi) - 1)
        return math.exp(log_c)
    if method == "series":
        terms = _int("terms", terms, 10)
        p = np.zeros(2 * r * terms + 1)
        p[r * terms] = 1.0  # distribution of S_m on [−r·terms, r·terms], zero at the centre index
        step = np.full(k, 1.0 / k)
        total, lo, hi = 0.0, r * terms, r * terms + 1
        for m in range(1, terms + 1):
            lo, hi = lo - r, hi + r
            p[lo:hi] = np.convolve(p[lo + r:hi - r], step)
            total += p[r * terms] / (2 * m)
        kappa4 = -(k ** 4 - 1) / 120.0
        beta = kappa4 / (8 * s2 * s2)
        a = 1.0 / (2 * math.sqrt(2 * math.pi * s2))
        total += a * (_hurwitz(1.5, terms + 1) + beta * _hurwitz(2.5, terms + 1))
        return math.exp(total)
    raise EdgewiseError(f"survival_constant: unknown method {method!r}; choose 'roots', 'integral' or 'series'")


@functools.lru_cache(maxsize=64)
def boundary_layer(k: int) -> tuple[float, float]:
    """``(a_k, h_k(0))`` of the harmonic function of the walk killed below 0: ``h(x) = x + a_k + Σ b_j ρ_j^x``.

    ``h`` solves ``h(x) = (1/k)Σ_{|s|≤r} h(x+s)`` for ``x ≥ 0`` with ``h = 0`` on ``−r … −1``;
    its decaying modes are the roots ``|ρ_j| < 1`` of ``R`` (see :func:`survival_constant`),
    fixed with ``a_k`` by the ``r`` boundary equations. Near a zero-padded edge the
    saturated count profile is ``∝ h``: ``a_k`` is the extrapolation length and
    ``h_k(0) = C_k·σ/√2`` (σ² = (k²−1)/12) ties it to the √L law. ``k = 3``: ``(1, 1)``;
    ``k = 5``: ``(1.2764, 1.3820)``.

    Domain: odd ``k ≥ 3``.
    """
    k = _int("kernel size k", k, 1)
    _odd(k, "boundary_layer")
    if k == 1:
        raise EdgewiseError("boundary_layer: k=1 never reaches past the edge; use k ≥ 3")
    r = (k - 1) // 2
    q = np.ones(k)
    q[r] -= k
    rq, _ = np.polydiv(q, [1.0, -2.0, 1.0])
    roots = np.roots(rq) if rq.size > 1 else np.zeros(0)
    inside = roots[np.abs(roots) < 1]
    m = np.zeros((r, r), dtype=complex)
    rhs = np.zeros(r, dtype=complex)
    for e, x in enumerate(range(-1, -r - 1, -1)):
        m[e, 0] = 1
        m[e, 1:] = inside ** x
        rhs[e] = -x
    sol = np.linalg.solve(m, rhs)
    return float(sol[0].real), float(sol.sum().real)
