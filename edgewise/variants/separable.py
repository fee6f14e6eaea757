"""Separable and depthwise-separable convolution (Goodfellow et al. §9.8), as functions.

Cost model, counting multiply-adds for one input channel → one output channel on an
``H_out × W_out`` output with a ``k × k`` kernel:

* direct: ``k² · H_out · W_out``;
* separable (``K = col ⊗ row``, two 1-D passes): ``k · H_out · W_in + k · H_out · W_out ≈ 2k · H · W``,
  a saving of ``k / 2`` (×1.5 at k = 3, ×3.5 at k = 7, ×5.5 at k = 11); the weights drop from ``k²`` to ``2k``.
* depthwise-separable (a ``k × k`` kernel per input channel, then a 1×1 mix of ``C_in`` into
  ``C_out`` channels): ``C_in · k² · HW + C_in · C_out · HW`` instead of ``C_in · C_out · k² · HW``,
  a ratio of ``1/C_out + 1/k²`` (≈ 0.13 for k = 3, C_out = 64). It is not a rank-1 restriction of
  the kernel but of how channels mix: ``K[i, l, m, n] = P[i, l] · D[l, m, n]``.

:func:`edgewise.variants.conv_cost` evaluates these formulas.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import EdgewiseError
from ._common import as_tensors, back, check_padding, fmt, pad_input, per_axis

__all__ = ["separable_conv", "factor_kernel", "depthwise_separable_conv"]

_CONV = {1: F.conv1d, 2: F.conv2d}


def _fits(spatial, ksize, padding, where):
    if padding == "valid" and any(k > n for k, n in zip(ksize, spatial)):
        raise EdgewiseError(f"{where}: the {fmt(ksize)} kernel is larger than the {fmt(spatial)} input in 'valid' "
                            "mode, so no output position fits; use padding='same' or 'full', or a smaller kernel")


def separable_conv(x, col, row, padding: str = "valid", stride=1):
    """2-D cross-correlation with the rank-1 kernel ``outer(col, row)``, done as two 1-D passes.

    Equal to ``correlate`` with ``K[m, n] = col[m] · row[n]`` applied to each channel separately;
    for true convolution pass ``col`` and ``row`` reversed. Costs ``≈ 2k·H·W`` multiply-adds per
    channel instead of ``k²·H·W`` (module docstring).

    Args:
        x: ``(H, W)``, ``(C, H, W)`` or ``(B, C, H, W)``; numpy or torch.
        col: ``(kh,)`` taps down the rows, shared by all channels, or ``(C, kh)`` one per channel.
        row: ``(kw,)`` taps along the columns, or ``(C, kw)``.
        padding: ``"valid"``, ``"same"`` or ``"full"`` zero padding, as for the full ``kh × kw`` kernel.
        stride: an int or ``(row, col)``.

    Returns:
        Same leading axes as ``x`` with ``(H_out, W_out)`` last; the kind of ``x``.

    Example:
        >>> box = np.ones(3) / 3
        >>> separable_conv(np.ones((4, 5)), box, box)  # a 3×3 box blur of a constant
        array([[1., 1., 1.],
               [1., 1., 1.]])
    """
    where = "separable_conv"
    padding = check_padding(padding, where)
    (xt, ct, rt), numpy_in = as_tensors(x, col, row, where=where)
    if xt.ndim not in (2, 3, 4):
        raise EdgewiseError(f"{where}: x of shape {tuple(xt.shape)} must be (H, W), (C, H, W) or (B, C, H, W)")
    lead = tuple(xt.shape[:-2])
    c = xt.shape[-3] if xt.ndim >= 3 else 1
    xb = xt.reshape(-1, c, *xt.shape[-2:])
    taps = []
    for name, v in (("col", ct), ("row", rt)):
        if v.ndim == 1:
            v = v.expand(c, -1)
        if v.ndim != 2 or v.shape[0] != c or v.shape[1] < 1:
            raise EdgewiseError(f"{where}: {name} of shape {tuple(v.shape)} must be (k,) or (C, k) with C = {c}, "
                                f"the channels of x (shape {tuple(xt.shape)})")
        taps.append(v)
    ksize = (taps[0].shape[1], taps[1].shape[1])
    _fits(tuple(xt.shape[-2:]), ksize, padding, where)
    sh, sw = per_axis(stride, 2, "stride", where)
    y = pad_input(xb, ksize, padding)
    y = F.conv2d(y, taps[0].reshape(c, 1, ksize[0], 1), stride=(sh, 1), groups=c)  # down the rows
    y = F.conv2d(y, taps[1].reshape(c, 1, 1, ksize[1]), stride=(1, sw), groups=c)  # along the columns
    return back(y.reshape(*lead, *y.shape[-2:]), numpy_in)


def factor_kernel(k, rtol: float = 1e-10):
    """Split a 2-D kernel into ``(col, row)`` with ``k == outer(col, row)``, if it has rank 1.

    Args:
        k: ``(kh, kw)``, numpy or torch.
        rtol: largest accepted ratio of the second to the first singular value.

    Returns:
        ``(col, row)``, the kind of ``k``; the scale is split evenly (``|col| = |row|``).

    Example:
        >>> col, row = factor_kernel(np.outer([1., 2., 1.], [-1., 0., 1.]))  # Sobel
        >>> np.allclose(np.outer(col, row), np.outer([1., 2., 1.], [-1., 0., 1.]))
        True
    """
    where = "factor_kernel"
    (kt,), numpy_in = as_tensors(k, where=where)
    if kt.ndim != 2:
        raise EdgewiseError(f"{where}: expected a 2-D kernel (kh, kw), got shape {tuple(kt.shape)}")
    u, s, vh = torch.linalg.svd(kt.to(torch.float64), full_matrices=False)
    if s.numel() == 0 or s[0] == 0:
        z = torch.zeros(kt.shape[0], dtype=kt.dtype), torch.zeros(kt.shape[1], dtype=kt.dtype)
        return tuple(back(t, numpy_in) for t in z)
    ratio = float(s[1] / s[0]) if s.numel() > 1 else 0.0
    if ratio > rtol:
        raise EdgewiseError(f"{where}: the {fmt(kt.shape)} kernel is not separable (rank > 1: second/first singular "
                            f"value = {ratio:.3g} > rtol={rtol:g}); use correlate with the full kernel, or keep its "
                            "best rank-1 part by raising rtol")
    scale = s[0].sqrt()
    col, row = (u[:, 0] * scale).to(kt.dtype), (vh[0] * scale).to(kt.dtype)
    return back(col, numpy_in), back(row, numpy_in)


def depthwise_separable_conv(x, depthwise, pointwise, bias=None, padding: str = "valid", stride=1):
    """Depthwise-separable convolution: one spatial kernel per input channel, then a 1×1 channel mix.

    The same as ``correlate(x, K)`` with ``K[i, l, m(, n)] = pointwise[i, l] · depthwise[l, m(, n)]``,
    at ``C_in·|kernel|·|out| + C_in·C_out·|out|`` multiply-adds instead of ``C_in·C_out·|kernel|·|out|``.

    Args:
        x: ``(C_in, *spatial)`` or ``(B, C_in, *spatial)``, 1-D or 2-D; numpy or torch.
        depthwise: ``(C_in, *kernel)``.
        pointwise: ``(C_out, C_in)``.
        bias: ``None`` or ``(C_out,)``.
        padding: ``"valid"``, ``"same"`` or ``"full"`` zero padding.
        stride: an int or ``(row, col)``, applied in the depthwise pass.

    Returns:
        ``([B,] C_out, *out)``, the kind of ``x``.

    Example:
        >>> y = depthwise_separable_conv(torch.ones(2, 5), torch.ones(2, 3), torch.tensor([[1., -1.], [1., 1.]]))
        >>> y
        tensor([[0., 0., 0.],
                [6., 6., 6.]])
    """
    where = "depthwise_separable_conv"
    padding = check_padding(padding, where)
    extra = [] if bias is None else [bias]
    (xt, dt, pt, *bt), numpy_in = as_tensors(x, depthwise, pointwise, *extra, where=where)
    if dt.ndim not in (2, 3):
        raise EdgewiseError(f"{where}: depthwise of shape {tuple(dt.shape)} must be (C_in, k) for 1-D or "
                            "(C_in, kh, kw) for 2-D signals")
    d = dt.ndim - 1
    if xt.ndim not in (d + 1, d + 2):
        raise EdgewiseError(f"{where}: a depthwise kernel of shape {tuple(dt.shape)} is for {d}-D signals, so x must "
                            f"be (C_in, *spatial) or (B, C_in, *spatial); got x of shape {tuple(xt.shape)}")
    batched = xt.ndim == d + 2
    xb = xt if batched else xt[None]
    c_in = xb.shape[1]
    if dt.shape[0] != c_in or pt.ndim != 2 or pt.shape[1] != c_in:
        raise EdgewiseError(f"{where}: x has {c_in} channels (shape {tuple(xt.shape)}); depthwise must be (C_in, "
                            f"*kernel) and pointwise (C_out, C_in) with C_in = {c_in}, got {tuple(dt.shape)} and "
                            f"{tuple(pt.shape)}")
    ksize = tuple(dt.shape[1:])
    _fits(tuple(xb.shape[2:]), ksize, padding, where)
    strides = per_axis(stride, d, "stride", where)
    y = _CONV[d](pad_input(xb, ksize, padding), dt[:, None], stride=strides, groups=c_in)
    b = None
    if bt:
        b = bt[0]
        if tuple(b.shape) != (pt.shape[0],):
            raise EdgewiseError(f"{where}: bias of shape {tuple(b.shape)} must be (C_out,) = ({pt.shape[0]},)")
    y = _CONV[d](y, pt.reshape(*pt.shape, *(1,) * d), b)
    return back(y if batched else y[0], numpy_in)
