"""Strides, pooling and dilation: the interior read pattern of a strided layer and the pooling adjoint."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Sequence

from ..errors import EdgewiseError
from ._stack import _int


def stride_pattern(k: int, s: int, offset: int = 0) -> list[int]:
    """Interior reads per input position of one ``k``-tap, stride-``s`` layer: one period of ``s`` values.

    Input ``i`` is read by tap ``t = i + offset − o·s`` of output ``o``, so an interior input
    is read once per tap ``t ∈ [0, k−1]`` with ``t ≡ i + offset (mod s)``:
    ``pattern[ρ] = #{t < k : t ≡ ρ + offset (mod s)}`` = ``⌈k/s⌉`` or ``⌊k/s⌋``.

    Args:
        k, s: taps and stride; offset: the layer's left padding (``(k−1)//2`` for same).

    Returns:
        list of ``s`` ints for ``i mod s = 0 … s−1``.
    """
    k, s = _int("kernel size k", k, 1), _int("stride s", s, 1)
    offset = int(offset)
    return [sum(1 for t in range(k) if (t - rho - offset) % s == 0) for rho in range(s)]


def stride_modulation(k: int, s: int) -> Fraction | float:
    """Max/min of the interior read pattern of a strided layer: ``⌈k/s⌉/⌊k/s⌋``.

    1 when ``s`` divides ``k`` (non-overlapping, e.g. ``s = k``: every input read once);
    ``math.inf`` when ``k < s`` (some inputs are never read). Later stride-1 layers with
    uniform interior counts keep this modulation (period ``s``) in the interior.
    """
    k, s = _int("kernel size k", k, 1), _int("stride s", s, 1)
    if k < s:
        return math.inf
    return Fraction(-(-k // s), k // s)


def block_upsample(w: Sequence[int], s: int, n: int | None = None) -> list[int]:
    """Adjoint of a non-overlapping window (pool or conv with ``k = s``): repeat each count ``s`` times.

    A stack ``pool_s, rest`` on ``n = s·m`` inputs counts ``block_upsample(rest on m, s)``, so
    its centre/edge equals that of ``rest`` on the pooled grid (the centre ``(n−1)//2``
    falls in block ``(m−1)//2``). Inputs past the last full window (``n`` not divisible)
    count 0.

    Args:
        w: counts on the pooled grid; s: window = stride; n: input width (default ``s·len(w)``).
    """
    s = _int("stride s", s, 1)
    n = s * len(w) if n is None else _int("width n", n, 1)
    if n // s != len(w):
        raise EdgewiseError(f"block_upsample: {len(w)} pooled counts do not fit width n={n} with stride {s} "
                            f"(expected n // s = {n // s} entries)")
    out = [int(v) for v in w for _ in range(s)]
    return out + [0] * (n - len(out))
