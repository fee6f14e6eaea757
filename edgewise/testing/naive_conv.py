"""Naive loop convolutions: the slow references for :mod:`edgewise.variants`.

Plain Python loops over numpy float64 arrays, one formula of Goodfellow et al. ch. 9 each,
0-based. Nothing is shared with the fast code: padding is an index offset with an explicit
bounds check (out-of-range samples are zero), convolution is written from its own
definition (eq. 9.4, a sum over *input* positions) rather than by flipping a kernel, and
strides are applied inside the loops. Inputs carry no batch axis. Meant for signals of a
few dozen samples.

Zero padding: ``before`` zeros for valid 0, same ``(k−1)//2``, full ``k−1`` (PyTorch's split).
"""

from __future__ import annotations

import numpy as np

__all__ = ["naive_correlate", "naive_convolve", "naive_locally_connected", "naive_tiled",
           "naive_depthwise_separable", "naive_output_length"]


def _before(padding: str, k: int) -> int:
    return {"valid": 0, "same": (k - 1) // 2, "full": k - 1}[padding]


def naive_output_length(n: int, k: int, padding: str, stride: int = 1) -> int:
    """Count the window starts by walking them: start = before-offset, then every ``stride`` samples."""
    unit = {"valid": n - k + 1, "same": n, "full": n + k - 1}[padding]
    count, j = 0, 0
    while j < unit:
        count += 1
        j += stride
    return count


def _val(x, *idx) -> float:
    """x[idx] or 0 outside (zero padding)."""
    for i, n in zip(idx, x.shape[-len(idx):]):
        if i < 0 or i >= n:
            return 0.0
    return float(x[idx])


def _as_multi(x, k, d):
    """Single-channel (x, k of ndim d) → (1, *x), (1, 1, *k) and a flag to strip the channel axes after."""
    x, k = np.asarray(x, dtype=np.float64), np.asarray(k, dtype=np.float64)
    if k.ndim == d:
        return x[None], k[None, None], True
    return x, k, False


def naive_correlate(x, k, padding: str = "valid", stride=1) -> np.ndarray:
    """Eq. 9.7: ``Z[i, j(, q)] = Σ_{l, m(, n)} V[l, j·s + m − p(, q·s + n − p')] K[i, l, m(, n)]``.

    ``x``: ``(L,)``, ``(H, W)``, ``(C, L)`` or ``(C, H, W)``; ``k``: same ndim, or ``(O, C, *kernel)``.
    """
    d = np.asarray(k).ndim if np.asarray(k).ndim <= 2 else np.asarray(k).ndim - 2
    v, kk, single = _as_multi(x, k, d)
    s = (stride,) * d if isinstance(stride, int) else tuple(stride)
    n_out, c_in = kk.shape[0], kk.shape[1]
    if d == 1:
        kl = kk.shape[2]
        p = _before(padding, kl)
        lo = naive_output_length(v.shape[1], kl, padding, s[0])
        z = np.zeros((n_out, lo))
        for i in range(n_out):
            for j in range(lo):
                for l in range(c_in):
                    for m in range(kl):
                        z[i, j] += _val(v[l], j * s[0] + m - p) * kk[i, l, m]
    else:
        kh, kw = kk.shape[2:]
        ph, pw = _before(padding, kh), _before(padding, kw)
        ho = naive_output_length(v.shape[1], kh, padding, s[0])
        wo = naive_output_length(v.shape[2], kw, padding, s[1])
        z = np.zeros((n_out, ho, wo))
        for i in range(n_out):
            for j in range(ho):
                for q in range(wo):
                    for l in range(c_in):
                        for m in range(kh):
                            for n in range(kw):
                                z[i, j, q] += _val(v[l], j * s[0] + m - ph, q * s[1] + n - pw) * kk[i, l, m, n]
    return z[0] if single else z


def naive_convolve(x, k, padding: str = "valid", stride=1) -> np.ndarray:
    """Eq. 9.4 summed over input positions: ``full[t] = Σ_m x[m] k[t − m]``, then output j is ``full[j·s + off]``.

    ``off`` is the full-output index of the first kept sample: full 0, valid ``k − 1``,
    same ``k − 1 − (k−1)//2`` (so that convolve is correlate with the flipped kernel under the same padding).
    """
    d = np.asarray(k).ndim if np.asarray(k).ndim <= 2 else np.asarray(k).ndim - 2
    v, kk, single = _as_multi(x, k, d)
    s = (stride,) * d if isinstance(stride, int) else tuple(stride)
    n_out, c_in = kk.shape[0], kk.shape[1]

    def off(kl):
        return {"full": 0, "valid": kl - 1, "same": kl - 1 - (kl - 1) // 2}[padding]

    if d == 1:
        kl, n = kk.shape[2], v.shape[1]
        lo = naive_output_length(n, kl, padding, s[0])
        z = np.zeros((n_out, lo))
        for i in range(n_out):
            for j in range(lo):
                t = j * s[0] + off(kl)
                for l in range(c_in):
                    for m in range(n):
                        if 0 <= t - m < kl:
                            z[i, j] += v[l, m] * kk[i, l, t - m]
    else:
        kh, kw = kk.shape[2:]
        h, w = v.shape[1:]
        ho, wo = naive_output_length(h, kh, padding, s[0]), naive_output_length(w, kw, padding, s[1])
        z = np.zeros((n_out, ho, wo))
        for i in range(n_out):
            for j in range(ho):
                for q in range(wo):
                    t, u = j * s[0] + off(kh), q * s[1] + off(kw)
                    for l in range(c_in):
                        for m in range(h):
                            for n in range(w):
                                if 0 <= t - m < kh and 0 <= u - n < kw:
                                    z[i, j, q] += v[l, m, n] * kk[i, l, t - m, u - n]
    return z[0] if single else z


def naive_locally_connected(x, w, padding: str = "valid", stride=1) -> np.ndarray:
    """Eq. 9.9: ``Z[i, j(, q)] = Σ_{l, m(, n)} V[l, j·s + m − p(, ...)] W[i, j(, q), l, m(, n)]``.

    ``x``: ``(C, L)`` or ``(C, H, W)``; ``w``: ``(O, L_out, C, k)`` or ``(O, H_out, W_out, C, kh, kw)``.
    """
    v, w = np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)
    d = v.ndim - 1
    s = (stride,) * d if isinstance(stride, int) else tuple(stride)
    if d == 1:
        n_out, lo, c_in, kl = w.shape
        p = _before(padding, kl)
        z = np.zeros((n_out, lo))
        for i in range(n_out):
            for j in range(lo):
                for l in range(c_in):
                    for m in range(kl):
                        z[i, j] += _val(v[l], j * s[0] + m - p) * w[i, j, l, m]
        return z
    n_out, ho, wo, c_in, kh, kw = w.shape
    ph, pw = _before(padding, kh), _before(padding, kw)
    z = np.zeros((n_out, ho, wo))
    for i in range(n_out):
        for j in range(ho):
            for q in range(wo):
                for l in range(c_in):
                    for m in range(kh):
                        for n in range(kw):
                            z[i, j, q] += _val(v[l], j * s[0] + m - ph, q * s[1] + n - pw) * w[i, j, q, l, m, n]
    return z


def naive_tiled(x, kernels, padding: str = "valid", stride=1) -> np.ndarray:
    """Eq. 9.10: ``Z[i, j(, q)] = Σ_{l, m(, n)} V[l, j·s + m − p(, ...)] K[i, l, m(, n), j % t(, q % t')]``.

    ``x``: ``(C, L)`` or ``(C, H, W)``; ``kernels``: ``(O, C, k, t)`` or ``(O, C, kh, kw, t, t')``.
    """
    v, kk = np.asarray(x, dtype=np.float64), np.asarray(kernels, dtype=np.float64)
    d = v.ndim - 1
    s = (stride,) * d if isinstance(stride, int) else tuple(stride)
    if d == 1:
        n_out, c_in, kl, t = kk.shape
        p = _before(padding, kl)
        lo = naive_output_length(v.shape[1], kl, padding, s[0])
        z = np.zeros((n_out, lo))
        for i in range(n_out):
            for j in range(lo):
                for l in range(c_in):
                    for m in range(kl):
                        z[i, j] += _val(v[l], j * s[0] + m - p) * kk[i, l, m, j % t]
        return z
    n_out, c_in, kh, kw, t, t2 = kk.shape
    ph, pw = _before(padding, kh), _before(padding, kw)
    ho = naive_output_length(v.shape[1], kh, padding, s[0])
    wo = naive_output_length(v.shape[2], kw, padding, s[1])
    z = np.zeros((n_out, ho, wo))
    for i in range(n_out):
        for j in range(ho):
            for q in range(wo):
                for l in range(c_in):
                    for m in range(kh):
                        for n in range(kw):
                            z[i, j, q] += (_val(v[l], j * s[0] + m - ph, q * s[1] + n - pw)
                                           * kk[i, l, m, n, j % t, q % t2])
    return z


def naive_depthwise_separable(x, depthwise, pointwise, padding: str = "valid", stride=1) -> np.ndarray:
    """Per input channel l, correlate with ``depthwise[l]``; then ``Z[i] = Σ_l pointwise[i, l] · D[l]``."""
    v = np.asarray(x, dtype=np.float64)
    dw, pw = np.asarray(depthwise, dtype=np.float64), np.asarray(pointwise, dtype=np.float64)
    per_channel = [naive_correlate(v[l], dw[l], padding, stride) for l in range(v.shape[0])]
    z = np.zeros((pw.shape[0],) + per_channel[0].shape)
    for i in range(pw.shape[0]):
        for l in range(v.shape[0]):
            z[i] += pw[i, l] * per_channel[l]
    return z
