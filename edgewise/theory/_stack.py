"""Argument checks and the exact transfer-matrix reference that every closed form shortcuts."""

from __future__ import annotations

from fractions import Fraction
from typing import Sequence

import numpy as np

from ..errors import EdgewiseError


#: padding schemes (same names as :data:`edgewise.nets.PADDINGS`) → how an out-of-image tap is resolved
PADDINGS = {
    "valid": "zeros", "same": "zeros", "full": "zeros", "circular": "circular",
    "reflect": "reflect", "replicate": "replicate", "symmetric": "symmetric",
}


# ----------------------------------------------------------------------- checks

def _int(name: str, value, lo: int, hint: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise EdgewiseError(f"{name} must be an integer, got {value!r}")
    if value < lo:
        raise EdgewiseError(f"{name} must be at least {lo}, got {value}{hint}")
    return int(value)


def _kld(k, L, dilation=1, lmin=0):
    return (_int("kernel size k", k, 1), _int("depth L", L, lmin), _int("dilation", dilation, 1))


def _padding(padding) -> str:
    if padding not in PADDINGS:
        raise EdgewiseError(f"unknown padding {padding!r}; choose one of {', '.join(PADDINGS)}")
    return padding


def _odd(k: int, what: str, padding: str = "same") -> None:
    if k % 2 == 0:
        raise EdgewiseError(
            f"{what}: kernel size k={k} is even, but this closed form needs an odd kernel: '{padding}' padding "
            f"of an even kernel is lopsided ({(k - 1) // 2} before, {k // 2} after), so its walk drifts. "
            f"Use an odd k, or counts('{padding}', {k}, n, L) for the exact values")


def _pads(padding: str, k: int, d: int) -> tuple[int, int]:
    # Deliberately not edgewise.nets.padding_amounts: the closed forms are checked against the
    # engines, so they must not share code with them (tests/test_theory.py enforces the imports).
    total = (k - 1) * d
    if padding == "valid":
        return 0, 0
    if padding == "full":
        return total, total
    return total // 2, total - total // 2


def _fold(x: np.ndarray, n: int, mode: str) -> np.ndarray:
    """Input index read by position ``x`` (−1 for a zero), each mode's periodic extension."""
    if mode == "zeros":
        return np.where((x >= 0) & (x < n), x, -1)
    if mode == "circular":
        return x % n
    if mode == "replicate":
        return np.clip(x, 0, n - 1)
    if n == 1:
        return np.zeros_like(x)
    if mode == "reflect":  # a circle of length 2(n−1) folded onto [0, n−1]
        x = x % (2 * (n - 1))
        return np.where(x < n, x, 2 * (n - 1) - x)
    x = x % (2 * n)  # symmetric: a circle of length 2n folded onto [0, n−1]
    return np.where(x < n, x, 2 * n - 1 - x)


def _out_size(padding: str, k: int, n: int, d: int, s: int) -> int:
    lo, hi = _pads(padding, k, d)
    return (n + lo + hi - (k - 1) * d - 1) // s + 1 if n + lo + hi >= (k - 1) * d + 1 else 0


# ----------------------------------------------------------------------- transfer matrices

def transfer_matrix(padding: str, k: int, n: int, dilation: int = 1, stride: int = 1) -> np.ndarray:
    """The integer matrix ``A[o, i]`` = number of taps of output ``o`` that read input ``i``.

    Args:
        padding: one of :data:`PADDINGS`.
        k, n, dilation, stride: kernel taps, input length, dilation, stride (all ≥ 1).

    Returns:
        int64 array ``(n_out, n)``; row sums are ``k`` except where zero padding drops taps.

    Domain: any sizes for which the layer has an output (``valid`` needs ``n ≥ (k−1)d+1``).
    """
    padding = _padding(padding)
    k, n, d, s = _int("kernel size k", k, 1), _int("width n", n, 1), _int("dilation", dilation, 1), \
        _int("stride", stride, 1)
    n_out = _out_size(padding, k, n, d, s)
    if n_out < 1:
        raise EdgewiseError(f"width n={n} is too small for a {k}-tap kernel with dilation {d} and "
                            f"'{padding}' padding: it needs n ≥ {(k - 1) * d + 1}")
    lo, _ = _pads(padding, k, d)
    x = np.arange(n_out)[:, None] * s + np.arange(k)[None, :] * d - lo
    i = _fold(x, n, PADDINGS[padding])
    o = np.broadcast_to(np.arange(n_out)[:, None], i.shape)
    m = np.zeros((n_out, n), dtype=np.int64)
    np.add.at(m, (o[i >= 0], i[i >= 0]), 1)
    return m


def layer_adjoint(padding: str, k: int, w: Sequence[int], n: int, dilation: int = 1,
                  stride: int = 1) -> list[int]:
    """Counts on the ``n`` inputs of one layer given counts ``w`` on its outputs: ``Aᵀ w`` in exact ints.

    Args:
        padding, k, dilation, stride: the layer (see :func:`transfer_matrix`).
        w: counts on the layer's outputs (length ``n_out``).
        n: the layer's input length.

    Returns:
        list of Python ints, one per input position.

    Domain: any layer :func:`transfer_matrix` accepts; chain calls to count a stack.
    """
    m = transfer_matrix(padding, k, n, dilation, stride)
    if len(w) != m.shape[0]:
        raise EdgewiseError(f"layer_adjoint: w has {len(w)} entries but a {k}-tap '{padding}' layer "
                            f"(stride {stride}, dilation {dilation}) on {n} inputs has {m.shape[0]} outputs")
    return _apply_t(m, [int(v) for v in w])


def _apply_t(m: np.ndarray, w: list[int]) -> list[int]:
    out = [0] * m.shape[1]
    rows, cols = np.nonzero(m)
    for o, i, c in zip(rows.tolist(), cols.tolist(), m[rows, cols].tolist()):
        out[i] += c * w[o]
    return out


def counts(padding: str, k: int, n: int, L: int, dilation: int = 1, stride: int = 1) -> list[int]:
    """Exact ``to="all"`` path counts of ``L`` identical layers, by transfer-matrix products ``(Aᵀ)ᴸ 1``.

    The reference form every closed form below is a shortcut for.

    Args:
        padding: one of :data:`PADDINGS`.
        k, n, L, dilation, stride: kernel taps, input width, depth (≥ 0), dilation, stride.

    Returns:
        list of Python ints over the ``n`` input positions.

    Domain: any stack whose every layer has an output.
    """
    padding = _padding(padding)
    k, L, d = _kld(k, L, dilation)
    sizes = [_int("width n", n, 1)]
    for layer in range(L):
        n_out = _out_size(padding, k, sizes[-1], d, stride)
        if n_out < 1:
            raise EdgewiseError(
                f"width n={n} is too small for {L} '{padding}' layers of a {k}-tap kernel (dilation {d}, "
                f"stride {stride}): layer {layer + 1} gets {sizes[-1]} positions but needs ≥ {(k - 1) * d + 1}")
        sizes.append(n_out)
    w = [1] * sizes[-1]
    for layer in reversed(range(L)):
        w = _apply_t(transfer_matrix(padding, k, sizes[layer], d, stride), w)
    return w


def center_edge_ratio(values: Sequence[int]) -> Fraction:
    """Exact centre/edge ratio of a 1-D count map: ``values[(n−1)//2]`` over the mean of both ends.

    Raises:
        EdgewiseError: when both ends are zero (the ratio is undefined or infinite).
    """
    n = len(values)
    if n < 1:
        raise EdgewiseError("center_edge_ratio: empty count map")
    edge = Fraction(int(values[0]) + int(values[-1]), 2)
    if edge == 0:
        raise EdgewiseError("center_edge_ratio: no path reaches the edge positions (both ends count 0)")
    return Fraction(int(values[(n - 1) // 2])) / edge
