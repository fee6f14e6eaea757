"""Valid (unpadded) stacks: multinomial rows, exact counts, centre/edge ``k**L`` and its minimum width."""

from __future__ import annotations

import functools
from fractions import Fraction

from ..errors import EdgewiseError
from ._stack import _int, _kld, center_edge_ratio


@functools.lru_cache(maxsize=256)
def _row(k: int, L: int) -> tuple[int, ...]:
    row = [1]
    for _ in range(L):
        prefix = [0]
        for v in row:
            prefix.append(prefix[-1] + v)
        m = len(row)
        row = [prefix[min(j, m - 1) + 1] - prefix[max(0, j - k + 1)] for j in range(m + k - 1)]
    return tuple(row)


def multinomial_row(k: int, L: int) -> list[int]:
    """Coefficients of ``(1 + z + … + z^{k−1})^L``: the number of tap sequences with each total offset.

    Args:
        k: taps (≥ 1); L: depth (≥ 0).

    Returns:
        list of ``L(k−1)+1`` Python ints summing to ``k**L`` (Pascal's triangle for k = 2).
    """
    k, L, _ = _kld(k, L)
    return list(_row(k, L))


def _dilated_row(k: int, L: int, d: int) -> list[int]:
    out = [0] * (L * (k - 1) * d + 1)
    for j, v in enumerate(_row(k, L)):
        out[j * d] = v
    return out


def valid_counts(k: int, n: int, L: int, dilation: int = 1) -> list[int]:
    """Exact ``to="all"`` counts of ``L`` valid (unpadded) layers: sums of multinomial coefficients.

    Input ``i`` reaches output ``o`` along ``D[i−o]`` paths, ``D`` the multinomial row spread
    to stride ``d``; the count sums ``D`` over the ``m = n − W + 1`` outputs,
    ``W = L·d·(k−1)+1`` being the receptive field.

    Args:
        k, n, L, dilation: kernel taps, input width, depth, dilation.

    Returns:
        list of Python ints over the ``n`` input positions.

    Domain: ``n ≥ W`` (the stack has an output); raises otherwise.
    """
    k, L, d = _kld(k, L, dilation)
    n = _int("width n", n, 1)
    dr = _dilated_row(k, L, d)
    W = len(dr)
    m = n - W + 1
    if m < 1:
        raise EdgewiseError(f"width n={n} is too small for {L} valid layers of a {k}-tap kernel with dilation "
                            f"{d}: the receptive field is W = L·d·(k−1)+1 = {W}, so n must be ≥ {W}")
    prefix = [0]
    for v in dr:
        prefix.append(prefix[-1] + v)
    return [prefix[min(i, W - 1) + 1] - prefix[max(0, i - m + 1)] for i in range(n)]


def valid_min_width(k: int, L: int, dilation: int = 1) -> int:
    """Smallest width for which valid centre/edge is exactly ``k**L``: ``2L·d(k−1)+1``.

    The centre ``c = (n−1)//2`` collects its whole multinomial row iff every output its
    field reaches exists: ``W−1 ≤ c ≤ n−W`` (``W = L·d(k−1)+1``), which holds exactly when
    ``n ≥ 2W−1`` (odd or even ``n``). Below that the ratio is the partial sum given by
    :func:`valid_ratio`, strictly smaller than ``k**L`` for ``k ≥ 2``.

    Returns:
        ``2W − 1`` (1 for ``k = 1``, where every width works).
    """
    k, L, d = _kld(k, L, dilation)
    return 2 * (L * d * (k - 1) + 1) - 1


def valid_ratio(k: int, L: int, n: int | None = None, dilation: int = 1) -> Fraction:
    """Centre/edge ratio under valid padding: ``k**L`` for a wide input, else the exact partial sum.

    Both ends count exactly one path, so the ratio is the centre's count
    ``Σ_{t=max(0,c−m+1)}^{min(c,W−1)} D[t]`` (see :func:`valid_counts`), which equals
    ``k**L`` exactly when ``n ≥ 2W−1`` (:func:`valid_min_width`).

    Args:
        k, L, dilation: kernel taps, depth, dilation.
        n: input width; None for the wide-input law ``k**L``.

    Returns:
        :class:`fractions.Fraction`.
    """
    k, L, d = _kld(k, L, dilation)
    if n is None:
        return Fraction(k ** L)
    return center_edge_ratio(valid_counts(k, n, L, d))
