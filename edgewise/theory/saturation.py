"""Deep same padding: the Perron-vector limit of centre/edge, its wide-input form and the mixing depth."""

from __future__ import annotations

import functools
import math

import numpy as np

from ._stack import _int, _kld, _odd
from .survival import boundary_layer


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


_DENSE_WIDTH = 2048  # widths above this use the closed form / asymptote of same_mixing_depth

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
    if n > _DENSE_WIDTH:  # the dense n×n eigenproblem would take O(n²) memory and O(n³) time
        if k == 3:  # λ_j = 1 + 2cos(πj/(n+1)), λ' = λ₃ (exact)
            return 1.0 / math.log((1 + 2 * math.cos(math.pi / (n + 1))) / (1 + 2 * math.cos(3 * math.pi / (n + 1))))
        return (n + 1) ** 2 / (4 * math.pi ** 2 * ((k * k - 1) / 12))  # the n ≫ k asymptote
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
