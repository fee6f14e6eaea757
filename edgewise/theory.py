"""Closed forms and laws for the path counts of plain convolution stacks, tensor-free.

Setting: ``L`` identical 1-D convolutions of one channel with a ``k``-tap kernel
(dilation ``d``), no activation, counted with ``to="all"`` (paths from an input
position to *any* output unit). One layer is an integer matrix ``A[o, i]`` =
number of taps of output ``o`` that read input ``i``; the count map is
``(Aᵀ)ᴸ 1``. With odd ``k = 2r+1`` and stride 1 that is the number of length-``L``
walks with steps in ``{−r..r}`` started at the input position, each step kept
or resolved by the padding rule. Everything here is pure arithmetic (``math``,
``fractions``, ``numpy``) and each closed form is checked against the exact
engine (:func:`edgewise.pathways`) in ``tests/test_theory.py``.

Ratios are centre/edge in 1-D: the centre is ``(n−1)//2``, the edge value is the
mean of the two ends (as :func:`edgewise.maps.position_summary` reports them).
In 2-D a stack of square kernels counts the outer product of the 1-D maps, so
centre/corner is the square of the 1-D ratio and centre/mid-edge equals it.

Results in one line (see ``docs/theory.md``):

* valid: centre/edge = ``k**L`` (exponential) while ``n`` is wide enough;
* same (zeros): ``≈ √(πL)/C_k`` (Sparre Andersen) while ``σ²L ≪ n²``, then it
  saturates at a ratio of the Perron eigenvector (``≈ (n+1)/π`` for ``k=3``);
* reflect: bounded, ``→ 2`` (4 at a 2-D corner);
* full, circular, symmetric (``(k−1)d`` even), replicate (only ``k=3``, or ``k=2, d=2``):
  uniform, ``k**L`` everywhere; wider replicate kernels over-count the edges.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence

import numpy as np

from .errors import EdgewiseError

__all__ = [
    "PADDINGS", "transfer_matrix", "layer_adjoint", "counts", "center_edge_ratio",
    "multinomial_row", "valid_counts", "valid_ratio", "valid_min_width",
    "same_counts", "same_ratio", "half_line_survival", "survival_constant", "same_ratio_small_depth",
    "same_ratio_limit", "boundary_layer", "same_ratio_limit_asymptotic", "same_mixing_depth", "same_law_domain",
    "reflect_counts", "reflect_ratio", "reflect_stationary", "reflect_ratio_limit", "reflect_mixing_depth",
    "uniform_counts", "is_uniform",
    "ratio", "DepthLaw", "depth_law",
    "erf_variance", "erf_std", "theoretical_rf", "erf_fraction", "map_moments", "gaussian_distance",
    "stride_pattern", "stride_modulation", "block_upsample",
    "Fit", "Law", "fit_law",
    "expected_squared_gradient", "normal_quantile", "mc_tolerance",
]

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


# ----------------------------------------------------------------------- valid padding

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


# ----------------------------------------------------------------------- same (zero) padding

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


@functools.lru_cache(maxsize=256)
def _chain(k: int, m: int):
    """Eigen-decomposition of the m×m banded 0/1 matrix (|i−j| ≤ r): values descending, vectors."""
    r = (k - 1) // 2
    i = np.arange(m)
    b = (np.abs(i[:, None] - i[None, :]) <= r).astype(float)
    vals, vecs = np.linalg.eigh(b)
    order = np.argsort(vals)[::-1]
    vals, vecs = vals[order], vecs[:, order]
    v0 = vecs[:, 0] * np.sign(vecs[:, 0].sum())
    return vals, vecs, v0


def _perron(k: int, m: int) -> np.ndarray:
    if k == 3:  # closed form: B = 1 + (shift + shift⁻¹), eigenvector sin(π(i+1)/(m+1))
        return np.sin(np.pi * (np.arange(m) + 1) / (m + 1))
    return _chain(k, m)[2]


def same_ratio_limit(k: int, n: int, dilation: int = 1) -> float:
    """Saturation limit of same-padding centre/edge as ``L → ∞``: a ratio of Perron-vector entries.

    ``Bᴸ 1 / λᴸ → (v·1) v`` with ``v`` the unit principal eigenvector of the banded 0/1
    matrix ``B``, so the ratio tends to ``v[c]/v[0]``. For ``k = 3``,
    ``v_i = sin(π(i+1)/(n+1))`` and the limit is ``sin(π(c+1)/(n+1))/sin(π/(n+1)) ≈ (n+1)/π``;
    other ``k`` use a numeric symmetric eigen-decomposition. With dilation the residue
    classes are separate chains: the limit combines the chains of the centre and of both
    ends, weighted by ``(v·1)v[index]``; when the centre's chain is shorter (smaller
    ``λ``) than the longest end chain the ratio tends to 0, when longer to ``inf``.

    Args:
        k: odd taps; n: width; dilation: ``d``.

    Returns:
        the limit as a float (1.0 for ``k = 1``; may be ``0.0`` or ``inf`` with dilation).

    Domain: odd ``k``, any ``n``; reached when ``L ≫`` :func:`same_mixing_depth`.
    """
    k, _, d = _kld(k, 0, dilation)
    n = _int("width n", n, 1)
    _odd(k, "same_ratio_limit")
    if k == 1 or n == 1:
        return 1.0
    c = (n - 1) // 2
    if d == 1:
        v = _perron(k, n)
        return float(v[c] / v[0])

    def term(pos):
        m = len(range(pos % d, n, d))
        v = _chain(k, m)[2] if k != 3 else _perron(3, m) / np.linalg.norm(_perron(3, m))
        return _chain(k, m)[0][0], float(v.sum() * v[pos // d])

    (lc, tc), ends = term(c), [term(0), term(n - 1)]
    top = max(lam for lam, _ in ends)
    if not math.isclose(lc, top, rel_tol=1e-12):
        return math.inf if lc > top else 0.0
    edge = sum(t for lam, t in ends if math.isclose(lam, top, rel_tol=1e-12)) / 2
    return tc / edge


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


def same_ratio_limit_asymptotic(k: int, n: int) -> float:
    """Wide-input closed form of :func:`same_ratio_limit`: ``(n − 1 + 2a_k)/(π·h_k(0))``.

    The Perron vector is ``≈ sin(π(i + a_k)/(n − 1 + 2a_k))`` in the bulk and ``∝ h(i)``
    near each edge (:func:`boundary_layer`), so the ratio is ``≈ (n−1+2a_k)/(π h_k(0))
    = √2 (n−1+2a_k)/(π C_k σ)``: linear in the width. For ``k = 3`` it is ``(n+1)/π``, the
    large-``n`` form of ``sin(π(c+1)/(n+1))/sin(π/(n+1))``; relative error ``O(1/n²)`` for
    any odd ``k`` (below 5e-4 at ``n = 64`` for ``k ≤ 9``).

    Domain: odd ``k ≥ 3``, ``n ≫ k``.
    """
    k, _, _ = _kld(k, 0)
    n = _int("width n", n, 1)
    a, h0 = boundary_layer(k)
    return (n - 1 + 2 * a) / (math.pi * h0)


def same_mixing_depth(k: int, n: int) -> float:
    """Depth per e-fold of the approach to :func:`same_ratio_limit`: ``1/ln(λ₁/|λ'|)``.

    ``Bᴸ1`` starts symmetric, so only the symmetric eigenvectors enter; ``λ'`` is the
    largest-magnitude eigenvalue among them after the Perron value ``λ₁``, and the
    ratio's relative error decays like ``(λ'/λ₁)^L``. For ``k = 3``,
    ``λ_j = 1 + 2cos(πj/(n+1))`` and ``λ' = λ₃``, so the depth is
    ``≈ 3(n+1)²/(8π²)``; in general ``≈ (n+1)²/(4π²σ²)`` for ``n ≫ k``.

    Returns:
        the depth as a float (0.0 when there is nothing to mix: ``k = 1`` or ``n ≤ 2``).

    Domain: odd ``k``, ``n ≥ 1``, undilated (for dilation ``d`` use the centre's class
    length ``⌈(n−j)/d⌉``).
    """
    k, _, _ = _kld(k, 0)
    n = _int("width n", n, 1)
    _odd(k, "same_mixing_depth")
    if k == 1 or n <= 2:
        return 0.0
    # restrict B to mirror-symmetric vectors (robust to degenerate eigenvalues): basis e_i + e_{n−1−i}
    half = (n + 1) // 2
    q = np.zeros((n, half))
    for i in range(half):
        q[i, i] = q[n - 1 - i, i] = 1.0
    q /= np.linalg.norm(q, axis=0)
    r = (k - 1) // 2
    idx = np.arange(n)
    b = (np.abs(idx[:, None] - idx[None, :]) <= r).astype(float)
    vals = np.sort(np.abs(np.linalg.eigvalsh(q.T @ b @ q)))[::-1]
    sym = vals[1:].tolist()
    if not sym or max(sym) < 1e-12:
        return 0.0
    return 1.0 / math.log(vals[0] / max(sym))


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


# ----------------------------------------------------------------------- reflect padding

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


# ----------------------------------------------------------------------- uniform modes

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


# ----------------------------------------------------------------------- dispatcher and depth laws

def ratio(padding: str, k: int, n: int, L: int, dilation: int = 1) -> Fraction:
    """Exact 1-D centre/edge ratio of ``L`` stride-1 layers, from the matching closed form.

    valid → :func:`valid_ratio`; same (odd k) → :func:`same_ratio`; reflect (odd k, d = 1) →
    :func:`reflect_ratio`; uniform modes (:func:`is_uniform`) → 1; anything else → the
    transfer-matrix reference :func:`counts`.

    Returns:
        :class:`fractions.Fraction`.
    """
    padding = _padding(padding)
    k, L, d = _kld(k, L, dilation)
    n = _int("width n", n, 1)
    if padding == "valid":
        return valid_ratio(k, L, n, d)
    if padding == "same" and k % 2:
        return same_ratio(k, n, L, d)
    if padding == "reflect" and k % 2 and d == 1 and (k - 1) // 2 <= n - 1 and n >= 2:
        return reflect_ratio(k, n, L)
    if is_uniform(padding, k, d):
        return Fraction(1)
    return center_edge_ratio(counts(padding, k, n, L, d))


@dataclass(frozen=True)
class DepthLaw:
    """How centre/edge grows with depth for one padding, kernel and width: the curve a plot overlays.

    Attributes:
        padding, k, n, dilation: the stack (1-D, stride 1).
        kind: ``"exponential"`` (valid), ``"sqrt-then-saturating"`` (same, odd k > 1),
            ``"bounded"`` (reflect, odd k), ``"uniform"``, or ``"numeric"`` (no closed form:
            even-kernel same/reflect/symmetric, wide replicate, dilated reflect).
        params: the law's numbers (``base``; ``C``, ``limit``, ``mixing_depth``, ``crossover_depth``;
            ``limit``; …).
        domain: where the law holds, in words.
    """

    padding: str
    k: int
    n: int
    dilation: int
    kind: str
    params: dict = field(default_factory=dict)
    domain: str = ""

    def curve(self, depths) -> np.ndarray:
        """The law's ratio at each depth (float; nan where the stack has no output)."""
        L = np.asarray(depths, dtype=float)
        if self.kind == "uniform":
            return np.ones_like(L)
        if self.kind == "exponential":
            return np.where(L <= self.params["max_depth"], float(self.params["base"]) ** L, np.nan)
        if self.kind == "sqrt-then-saturating":
            law = np.sqrt(np.pi * np.maximum(L, 0)) / self.params["C"]
            return np.maximum(1.0, np.minimum(law, self.params["limit"]))
        if self.kind == "bounded":
            return np.full_like(L, float(self.params["limit"]))
        return np.array([float(x) for x in self.exact(depths)])

    def __call__(self, depths) -> np.ndarray:
        return self.curve(depths)

    def exact(self, depths) -> list[Fraction]:
        """Exact ratios at each depth (:func:`ratio`)."""
        return [ratio(self.padding, self.k, self.n, int(L), self.dilation) for L in depths]


def depth_law(padding: str, k: int, n: int, dilation: int = 1) -> DepthLaw:
    """The theory of centre/edge versus depth for one 1-D stack, as a :class:`DepthLaw`.

    Args:
        padding: one of :data:`PADDINGS`; k: taps; n: width; dilation: ``d``.

    Returns:
        :class:`DepthLaw` whose ``curve`` is ``k**L`` (valid), ``min(√(πL)/C_k, limit)``
        (same), the limit 2 (reflect) or 1 (uniform modes).
    """
    padding = _padding(padding)
    k, _, d = _kld(k, 0, dilation)
    n = _int("width n", n, 1)
    law = functools.partial(DepthLaw, padding, k, n, d)
    if is_uniform(padding, k, d):
        return law("uniform", {"ratio": 1, "counts": "k**L"},
                   "every depth and width: each input is read by exactly k taps per layer")
    if padding == "valid":
        W1 = d * (k - 1)
        max_depth = (n - 1) // W1
        exact_depth = (n - 1) // (2 * W1)
        return law("exponential", {"base": k, "max_depth": max_depth, "exact_depth": exact_depth},
                   f"centre/edge = k**L exactly for L ≤ {exact_depth} (n ≥ 2L·d(k−1)+1); "
                   f"smaller partial sums up to L = {max_depth}, where the output vanishes")
    if padding == "same" and k % 2:
        C = survival_constant(k)
        s2 = _sigma2(k) * d * d
        limit = same_ratio_limit(k, n, d)
        m = len(range(((n - 1) // 2) % d, n, d))
        mix = same_mixing_depth(k, m)
        return law("sqrt-then-saturating",
                   {"C": C, "sigma2": s2, "limit": limit, "mixing_depth": mix,
                    "sqrt_law_until": 0.05 * m * m / _sigma2(k),
                    "crossover_depth": (C * limit) ** 2 / math.pi if math.isfinite(limit) else math.inf},
                   f"√(πL)/C_k within 5% for L from ~5–11 (k=7…3) up to 0.05·m²/σ² = {0.05 * m * m / _sigma2(k):.4g} "
                   f"(m = {m} sites in the centre's class, σ² = {_sigma2(k):.4g}); the limit {limit:.6g} once "
                   f"L ≫ {mix:.4g} (the mixing depth, per e-fold)")
    if padding == "reflect" and k % 2 and d == 1 and (k - 1) // 2 <= n - 1 and n >= 2:
        return law("bounded", {"limit": reflect_ratio_limit(k, n), "stationary": "(1, 2, …, 2, 1)",
                               "mixing_depth": reflect_mixing_depth(k, n)},
                   "every depth: bounded, → 2 (1-D), 4 (2-D corner) as L → ∞; odd k, r ≤ n−1")
    return law("numeric", {}, "no closed form: exact transfer-matrix counts only")


# ----------------------------------------------------------------------- effective receptive field

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


# ----------------------------------------------------------------------- stride, pooling, dilation

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


# ----------------------------------------------------------------------- fitted laws

@dataclass(frozen=True)
class Fit:
    """A least-squares line in log space: ``log ratio = a + b·x`` (``x = L`` or ``log L``)."""

    a: float
    b: float
    r2: float
    rss: float


@dataclass(frozen=True)
class Law:
    """The law that best describes ratios versus depth.

    Attributes:
        kind: ``"exponential"`` (ratio ≈ e^a·base^L), ``"power"`` (≈ e^a·L^p), ``"bounded"``
            (levels off at ``limit``) or ``"uniform"`` (≈ 1 throughout).
        params: ``base``/``rate``, ``exponent``, ``limit``… for the kind chosen.
        r2: R² of the chosen fit in log space (1.0 for uniform).
        exponential, power: both fits.
    """

    kind: str
    params: dict
    r2: float
    exponential: Fit
    power: Fit


def _line(x: np.ndarray, y: np.ndarray) -> Fit:
    b, a = np.polyfit(x, y, 1)
    rss = float(np.sum((y - (a + b * x)) ** 2))
    tss = float(np.sum((y - y.mean()) ** 2))
    return Fit(float(a), float(b), 1.0 - rss / tss if tss > 0 else (1.0 if rss < 1e-24 else 0.0), rss)


def fit_law(depths, ratios, uniform_tol: float = 1e-9, flat_exponent: float = 0.05) -> Law:
    """Fit ``log ratio = a + b·L`` (exponential) and ``log ratio = a + p·log L`` (power); pick a law.

    Rules, in order: every ratio within ``uniform_tol`` of 1 → ``"uniform"``; the power-law
    exponent fitted to the deeper half of the points below ``flat_exponent`` in magnitude →
    ``"bounded"`` (``limit`` = the last ratio); otherwise the fit with the smaller residual.

    Args:
        depths: ≥ 3 positive depths; ratios: the matching positive ratios.

    Returns:
        :class:`Law`.
    """
    L = np.asarray([float(x) for x in depths])
    R = np.asarray([float(x) for x in ratios])
    if L.shape != R.shape or L.ndim != 1 or L.size < 3:
        raise EdgewiseError(f"fit_law: need ≥ 3 depths and as many ratios, got {L.size} depths and {R.size} ratios")
    if (L <= 0).any() or (R <= 0).any() or not np.isfinite(R).all():
        raise EdgewiseError("fit_law: depths and ratios must be positive and finite (log space)")
    if len(set(L.tolist())) < 3:
        raise EdgewiseError("fit_law: need at least 3 distinct depths")
    order = np.argsort(L)
    L, R = L[order], R[order]
    y = np.log(R)
    exp_fit, pow_fit = _line(L, y), _line(np.log(L), y)
    if np.all(np.abs(R - 1) <= uniform_tol):
        return Law("uniform", {"ratio": 1.0}, 1.0, exp_fit, pow_fit)
    half = max(3, L.size // 2)
    tail = _line(np.log(L[-half:]), y[-half:])
    if abs(tail.b) < flat_exponent:
        return Law("bounded", {"limit": float(R[-1]), "tail_exponent": tail.b}, tail.r2, exp_fit, pow_fit)
    if exp_fit.rss <= pow_fit.rss:
        return Law("exponential", {"base": math.exp(exp_fit.b), "rate": exp_fit.b, "prefactor": math.exp(exp_fit.a)},
                   exp_fit.r2, exp_fit, pow_fit)
    return Law("power", {"exponent": pow_fit.b, "prefactor": math.exp(pow_fit.a)}, pow_fit.r2, exp_fit, pow_fit)


# ----------------------------------------------------------------------- Monte-Carlo identities

def expected_squared_gradient(paths, sigma, L: int):
    """``E[(∂y_o/∂x_p)²] = σ^{2L} · paths(p → o)`` for a linear conv net with i.i.d. zero-mean weights.

    Proof. ``∂y_o/∂x_p = Σ_π Π_ℓ w_ℓ[t_ℓ(π)]``, a sum over the paths ``π`` from ``p`` to ``o``
    of the product of the taps they use, one per layer. A path is fixed by its output unit
    and its tap sequence (read backwards from ``o``, each tap names the unit it reads), so two
    distinct paths to the same ``o`` differ in the tap of at least one layer; the expectation
    of the product of their weight products then contains an independent zero-mean factor
    and vanishes — weight sharing does not matter, only independence across taps and
    layers. Each path squared gives ``Π_ℓ E[w²] = σ^{2L}``. Summing over output units gives
    the ``to="all"`` count. This is the sum of squares over outputs, not the square of the
    gradient of ``Σ_o y_o``: two paths from ``p`` to *different* outputs with the same tap
    sequence add cross terms. With zero padding (valid/same/full) and stride 1 the tap
    sequence fixes the output, so both agree; with reflect, circular, replicate or
    symmetric padding they do not.

    Args:
        paths: path count(s) (int, Fraction, or an array of them).
        sigma: weight standard deviation; L: number of conv layers.

    Returns:
        ``paths · σ^{2L}`` (exact when ``sigma`` is an int or Fraction).
    """
    L = _int("depth L", L, 0)
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float, Fraction, np.floating, np.integer)) \
            or not sigma >= 0:
        raise EdgewiseError(f"expected_squared_gradient: sigma must be a non-negative number, got {sigma!r}")
    if isinstance(sigma, np.floating):
        sigma = float(sigma)
    factor = sigma ** (2 * L)
    if isinstance(paths, (list, tuple)):
        return [p * factor for p in paths]
    return paths * factor


def normal_quantile(p: float) -> float:
    """Inverse standard normal CDF (Acklam's rational approximation, then two Newton steps on ``math.erfc``).

    Domain: ``0 < p < 1``; accurate to ~1e-15 relative in the tails used for tolerances.
    """
    if not isinstance(p, (int, float)) or not 0.0 < p < 1.0:
        raise EdgewiseError(f"normal_quantile: p must lie strictly between 0 and 1, got {p!r}")
    a = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
         1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
    b = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
         6.680131188771972e+01, -1.328068155288572e+01)
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
         -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
    e = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00)
    lo = 0.02425
    if p < lo:
        q = math.sqrt(-2 * math.log(p))
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((e[0] * q + e[1]) * q + e[2]) * q + e[3]) * q + 1)
    elif p <= 1 - lo:
        q = p - 0.5
        t = q * q
        x = (((((a[0] * t + a[1]) * t + a[2]) * t + a[3]) * t + a[4]) * t + a[5]) * q / \
            (((((b[0] * t + b[1]) * t + b[2]) * t + b[3]) * t + b[4]) * t + 1)
    else:
        q = math.sqrt(-2 * math.log(1 - p))
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((e[0] * q + e[1]) * q + e[2]) * q + e[3]) * q + 1)
    for _ in range(2):  # Newton on the tail probability: stable for p near 0 or 1
        if x > 0:
            err = 0.5 * math.erfc(x / math.sqrt(2)) - (1 - p)
            x += err / (math.exp(-x * x / 2) / math.sqrt(2 * math.pi))
        else:
            err = 0.5 * math.erfc(-x / math.sqrt(2)) - p
            x -= err / (math.exp(-x * x / 2) / math.sqrt(2 * math.pi))
    return x


def mc_tolerance(sample_std, n_samples: int, n_tests: int = 1, alpha: float = 1e-3):
    """Half-width ``z·sd/√N`` for comparing ``n_tests`` Monte-Carlo means with their expectations.

    ``z = Φ⁻¹(1 − α/(2·n_tests))`` (two-sided, Bonferroni), so all ``n_tests`` comparisons
    pass together with probability ≥ ``1 − α`` when the CLT holds.

    Args:
        sample_std: per-test sample standard deviation (float or array).
        n_samples: ``N``, the draws behind each mean; n_tests: comparisons made; alpha: family error rate.

    Returns:
        the tolerance (float or array, like ``sample_std``).
    """
    n_samples = _int("n_samples", n_samples, 2)
    n_tests = _int("n_tests", n_tests, 1)
    if not 0 < alpha < 1:
        raise EdgewiseError(f"mc_tolerance: alpha must lie in (0, 1), got {alpha}")
    z = normal_quantile(1 - alpha / (2 * n_tests))
    sd = np.asarray(sample_std, dtype=float) if not isinstance(sample_std, (int, float)) else float(sample_std)
    if np.any(np.asarray(sd) < 0):
        raise EdgewiseError("mc_tolerance: sample_std must be non-negative")
    return z * sd / math.sqrt(n_samples)
