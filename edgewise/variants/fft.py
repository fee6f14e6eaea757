"""FFT convolution and the cost model that says when it pays (Goodfellow et al. §9.8).

Convolution is pointwise multiplication in the frequency domain: zero-pad both signals to at
least the full size ``N_a = n_a + k_a − 1`` per axis (so the circular convolution of the transforms
does not wrap), multiply the spectra, transform back, and crop to valid/same/full.

Cost model (multiply-adds, one input → one output channel, d-D, ``N = Π N_a``):

* direct: ``|kernel| · |out|`` = ``k² · H_out · W_out`` in 2-D — grows with the kernel;
* FFT: three real transforms of ``N`` points at ``N · log₂ N`` each, plus ``2N`` for the
  half-spectrum complex products: ``3 N log₂ N + 2N``, i.e. ``O(HW log HW)`` and nearly independent
  of k (``N`` only grows by ``k − 1`` per axis). With channels: ``(C_in + C_in·C_out + C_out)·N log₂ N
  + 2·C_in·C_out·N`` against ``C_in·C_out·k²·|out|``.

The crossover (single channel, 'same', k × k kernel on n × n) is where ``k² n² ≈ 3 N log₂ N + 2N``:
k = 7 for n = 32 to 128 and k = 8 for n = 256 to 512 in this model (:func:`fft_crossover`). With
64 → 64 channels the input and output transforms are shared by all channel pairs, leaving about one
(kernel) transform per pair, and it drops to k = 4–5. In 1-D the model crosses near k ≈ 30 for
n = 64 to 1024, since direct 1-D convolution costs only k per output. Measured once on a 2-core
CPU (float32, torch 2.14), direct ``conv2d`` and this function broke even at k ≈ 9, 5–7 and 7 for
n = 128, 256 and 512; in 1-D at n = 1024 direct was still faster at k = 255 (small transforms are
dominated by overhead). The transform length is rounded up to a 2·3·5·7-smooth size
(:func:`fast_length`): a 74 × 74 round trip took 5× as long as 75 × 75, and 263 × 263 (prime)
3.6× as long as 264 × 264.
"""

from __future__ import annotations

import math

import torch

from ..errors import EdgewiseError
from ._common import as_tensors, back, check_padding, layout, output_size, pad_amounts, per_axis

__all__ = ["fft_convolve", "fast_length", "conv_cost", "fft_crossover", "COST_METHODS"]

#: methods :func:`conv_cost` knows
COST_METHODS = ("direct", "separable", "depthwise_separable", "fft")


def fast_length(n: int) -> int:
    """Smallest m ≥ n whose only prime factors are 2, 3, 5 and 7 (FFTs of such sizes are fast).

    Example:
        >>> fast_length(74), fast_length(286)
        (75, 288)
    """
    m = max(int(n), 1)
    while True:
        r = m
        for p in (2, 3, 5, 7):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def fft_convolve(x, k, padding: str = "full", stride=1):
    """True convolution via ``torch.fft``; the same result as :func:`~edgewise.variants.convolve`.

    Args:
        x: ``(L,)``/``(H, W)`` single-channel, or ``(C_in, *spatial)``/``(B, C_in, *spatial)``; numpy or torch.
        k: same ndim as a single-channel ``x``, else ``K[i, l, m(, n)]`` of shape ``(C_out, C_in, *kernel)``.
        padding: ``"full"`` (default, what the FFT computes), ``"same"`` (PyTorch's split, as ``convolve``)
            or ``"valid"``.
        stride: an int or ``(row, col)``: every s-th output of the unit-stride result.

    Returns:
        The convolution, of the kind of ``x``; agrees with ``convolve`` to rounding (≈1e-15 relative in float64).

    Example:
        >>> fft_convolve(np.array([1., 2.]), np.array([1., 3.])).round(12)  # (1 + 2z)(1 + 3z)
        array([1., 5., 6.])
    """
    where = "fft_convolve"
    padding = check_padding(padding, where)
    (xt, kt), numpy_in = as_tensors(x, k, where=where)
    lay = layout(xt, kt, where, padding)
    strides = per_axis(stride, lay.d, "stride", where)
    xb, kb = lay.split(xt, kt)
    spatial, ksize = tuple(xb.shape[2:]), tuple(kb.shape[2:])
    # any length ≥ n + k − 1 avoids wrap-around; a 2·3·5·7-smooth one keeps the FFT fast
    size = tuple(fast_length(n + kk - 1) for n, kk in zip(spatial, ksize))
    dims = tuple(range(2, 2 + lay.d))
    xf = torch.fft.rfftn(xb, s=size, dim=dims)
    kf = torch.fft.rfftn(kb, s=size, dim=dims)
    f = "fg"[:lay.d]
    y = torch.fft.irfftn(torch.einsum(f"bl{f},il{f}->bi{f}", xf, kf), s=size, dim=dims)
    crop = []
    for n, kk, s in zip(spatial, ksize, strides):
        start = 0 if padding == "full" else (kk - 1) - pad_amounts(padding, kk)[0]
        length = {"full": n + kk - 1, "same": n, "valid": n - kk + 1}[padding]
        crop.append(slice(start, start + length, s))
    return back(lay.merge(y[(slice(None), slice(None), *crop)]), numpy_in)


def conv_cost(input_size, kernel_size, method: str = "direct", padding: str = "same", stride=1,
              in_channels: int = 1, out_channels: int = 1) -> float:
    """Multiply-adds of one convolution under the module's cost model.

    Args:
        input_size: ``n`` or ``(H, W)``.
        kernel_size: ``k`` or ``(kh, kw)``.
        method: ``"direct"``, ``"separable"`` (2-D, two 1-D passes), ``"depthwise_separable"`` or ``"fft"``.
        padding: ``"valid"``, ``"same"`` or ``"full"``.
        stride: an int or ``(row, col)`` (the FFT computes the unit-stride output regardless).
        in_channels, out_channels: channel counts.

    Returns:
        The count (a float; the FFT term is not an integer).

    Example:
        >>> conv_cost((64, 64), 3), conv_cost((64, 64), 3, "separable")
        (36864.0, 24960.0)
    """
    where = "conv_cost"
    padding = check_padding(padding, where)
    if method not in COST_METHODS:
        raise EdgewiseError(f"{where}: unknown method {method!r}; choose one of {', '.join(COST_METHODS)}")
    size = (input_size,) if isinstance(input_size, int) else tuple(input_size)
    d = len(size)
    ks = per_axis(kernel_size, d, "kernel_size", where)
    ns = per_axis(size, d, "input_size", where)
    ss = per_axis(stride, d, "stride", where)
    if padding == "valid" and any(k > n for k, n in zip(ks, ns)):
        raise EdgewiseError(f"{where}: kernel {ks} is larger than the input {ns} in 'valid' mode; use 'same' or 'full'")
    out = [output_size(n, k, padding, s) for n, k, s in zip(ns, ks, ss)]
    ci, co = in_channels, out_channels
    if method == "direct":
        return float(ci * co * math.prod(ks) * math.prod(out))
    if method == "depthwise_separable":
        return float(ci * math.prod(ks) * math.prod(out) + ci * co * math.prod(out))
    if method == "separable":
        if d != 2:
            raise EdgewiseError(f"{where}: 'separable' is a 2-D method (two 1-D passes); got a {d}-D input size")
        padded_w = ns[1] + sum(pad_amounts(padding, ks[1]))
        return float(ci * co * (ks[0] * out[0] * padded_w + ks[1] * out[0] * out[1]))
    big_n = math.prod(n + k - 1 for n, k in zip(ns, ks))
    return float((ci + ci * co + co) * big_n * math.log2(big_n) + 2 * ci * co * big_n)


def fft_crossover(input_size, padding: str = "same", in_channels: int = 1, out_channels: int = 1,
                  max_kernel: int = 512) -> int | None:
    """Smallest kernel size k (k^d kernel) at which the FFT model is no dearer than direct convolution.

    Args:
        input_size: ``n`` or ``(H, W)``.
        padding, in_channels, out_channels: as :func:`conv_cost`.
        max_kernel: the largest k tried (also capped by the input in 'valid' mode).

    Returns:
        k, or ``None`` when direct convolution stays cheaper up to ``max_kernel``.

    Example:
        >>> fft_crossover((64, 64)), fft_crossover(256)
        (7, 30)
    """
    size = (input_size,) if isinstance(input_size, int) else tuple(input_size)
    top = min(max_kernel, min(size)) if padding == "valid" else max_kernel
    for k in range(1, top + 1):
        kw = dict(padding=padding, in_channels=in_channels, out_channels=out_channels)
        if conv_cost(size, k, "fft", **kw) <= conv_cost(size, k, "direct", **kw):
            return k
    return None
