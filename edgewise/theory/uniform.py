"""Uniform padding modes (full, circular, symmetric, narrow replicate): ``k**L`` at every position."""

from __future__ import annotations

from ..errors import EdgewiseError
from ._stack import _int, _kld, _padding


def is_uniform(padding: str, k: int, dilation: int = 1) -> bool:
    """Whether every input position is read by exactly ``k`` taps per layer (uniform counts at every depth).

    * ``full`` and ``circular``: always (every position sees all ``k`` taps; a circulant).
    * ``symmetric`` (half-sample mirror, a circle of length ``2n`` folded, two sites per
      position): exactly when the tap offsets are symmetric, ``(k−1)·d`` even (odd ``k``, or
      even ``d``).
    * ``replicate``: only ``k = 1`` or ``(k−1)·d = 2`` (``k=3, d=1`` or ``k=2, d=2``): the end
      collects ``Σ_t max(0, lo − t·d + 1)`` reads, e.g. ``(r+1)(r+2)/2 = 6`` for ``k = 5``,
      and positions ``1 … hi−1`` lose taps. Wide replicate kernels *over*-count the edges.
    * ``valid``, ``same``, ``reflect``: only ``k = 1``.
    """
    padding = _padding(padding)
    k, _, d = _kld(k, 0, dilation)
    if k == 1 or padding in ("full", "circular"):
        return True
    if padding == "symmetric":
        return (k - 1) * d % 2 == 0
    if padding == "replicate":
        return (k - 1) * d == 2
    return False


def uniform_counts(k: int, n: int, L: int, padding: str, dilation: int = 1) -> list[int]:
    """Exact ``to="all"`` counts of a uniform mode: ``k**L`` at every position and depth.

    Each layer's adjoint has column sums ``k`` (every input is read by exactly ``k``
    taps), so ``Aᵀ`` maps the constant ``c`` to ``k·c`` and ``(Aᵀ)ᴸ 1 = k**L``. Full
    padding keeps this although its output grows by ``(k−1)d`` per layer.

    Args:
        k, n, L, dilation: taps, width, depth, dilation; padding: a mode for which
        :func:`is_uniform` holds.

    Domain: see :func:`is_uniform`; raises otherwise, naming the exact alternative.
    """
    padding = _padding(padding)
    k, L, d = _kld(k, L, dilation)
    n = _int("width n", n, 1)
    if not is_uniform(padding, k, d):
        lo = (k - 1) * d // 2
        why = {
            "replicate": f"replicate reads each end Σ_t max(0, lo − t·d + 1) = "
                         f"{sum(max(0, lo - t * d + 1) for t in range(k))} times per layer instead of k={k} "
                         f"(for odd k: (r+1)(r+2)/2); it is uniform only for k=1 or (k−1)·d = 2",
            "symmetric": f"symmetric padding is uniform only when (k−1)·d is even (here {(k - 1) * d})",
        }.get(padding, f"'{padding}' padding does not read every position k times")
        raise EdgewiseError(f"uniform_counts: {why}. Use counts('{padding}', {k}, {n}, {L}, {d}) for the "
                            "exact values")
    return [k ** L] * n
