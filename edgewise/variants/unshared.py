"""Locally connected (unshared) and tiled convolution, as functions (Goodfellow et al. §9.5).

Both read the same sliding windows as :func:`~edgewise.variants.correlate` (cross-correlation,
zero ``padding`` valid/same/full, ``stride``) but change how weights are shared across output
positions ``(j, k)``:

* locally connected, eq. 9.9: a separate kernel at every output position,
  ``Z[i, j, k] = Σ_{l,m,n} V[l, j·s + m − p, k·s + n − p'] W[i, j, k, l, m, n]``;
* tiled, eq. 9.10: ``t`` kernels per axis used cyclically,
  ``Z[i, j, k] = Σ_{l,m,n} V[l, j·s + m − p, k·s + n − p'] K[i, l, m, n, j % t, k % t]``.

Tiled with ``t = 1`` is ordinary convolution; with ``t`` = the output size it is locally
connected with ``W[i, j, k, l, m, n] = K[i, l, m, n, j, k]``. Both are computed from one view of
the input's windows (``Tensor.unfold``) contracted with ``torch.einsum``: no Python loop over
positions.
"""

from __future__ import annotations

import torch

from ..errors import EdgewiseError
from ._common import as_tensors, back, check_padding, fmt, output_size, pad_input, per_axis

__all__ = ["locally_connected", "tiled_conv", "windows"]

_LETTERS = "jk"  # output positions (row, col)
_OFFSETS = "mn"  # kernel offsets (row, col)


def windows(x: torch.Tensor, ksize, stride, padding: str, extra=None) -> torch.Tensor:
    """Sliding windows as a view: ``(B, C, *spatial)`` → ``(B, C, *out, *ksize)`` (copied only to zero-pad)."""
    w = pad_input(x, ksize, padding, extra)
    for a, (k, s) in enumerate(zip(ksize, stride)):
        w = w.unfold(2 + a, k, s)
    return w


def _batched(x, d: int, where: str, what: str):
    if x.ndim not in (d + 1, d + 2):
        raise EdgewiseError(f"{where}: {what} is for {d}-D signals, so x must be (C_in, *spatial) or "
                            f"(B, C_in, *spatial) with {d} spatial axes; got x of shape {tuple(x.shape)}")
    return (x, True) if x.ndim == d + 2 else (x[None], False)


def _check_fit(spatial, ksize, padding, where):
    if padding == "valid" and any(k > n for k, n in zip(ksize, spatial)):
        raise EdgewiseError(f"{where}: the {fmt(ksize)} kernel is larger than the {fmt(spatial)} input in 'valid' "
                            "mode, so no output position fits; use padding='same' or 'full', or a smaller kernel")


def locally_connected(x, w, bias=None, stride=1, padding: str = "valid"):
    """Unshared convolution (eq. 9.9): a different kernel at every output position.

    Args:
        x: ``(C_in, *spatial)`` or ``(B, C_in, *spatial)``, 1-D or 2-D; numpy or torch.
        w: ``W[i, j(, k), l, m(, n)]`` of shape ``(C_out, *out, C_in, *kernel)``; ``out`` must be the
            output size that ``padding`` and ``stride`` give for this input.
        bias: ``None`` or ``(C_out, *out)``, one bias per output unit.
        stride: an int or ``(row, col)``.
        padding: ``"valid"``, ``"same"`` or ``"full"`` zero padding.

    Returns:
        ``([B,] C_out, *out)``, the kind of ``x``. The layer has ``C_out·|out|·C_in·|kernel|`` weights,
        ``|out|`` times a convolution's.

    Example:
        >>> x = torch.ones(1, 5)
        >>> w = torch.arange(3.0).view(1, 3, 1, 1).expand(1, 3, 1, 3)  # output j sums x with weight j
        >>> locally_connected(x, w)
        tensor([[0., 3., 6.]])
    """
    where = "locally_connected"
    padding = check_padding(padding, where)
    tensors, numpy_in = as_tensors(x, w, *([] if bias is None else [bias]), where=where)
    xt, wt = tensors[:2]
    if wt.ndim not in (4, 6):
        raise EdgewiseError(f"{where}: w of shape {tuple(wt.shape)} must be (C_out, L_out, C_in, k) for 1-D or "
                            "(C_out, H_out, W_out, C_in, kh, kw) for 2-D (eq. 9.9's W[i, j, k, l, m, n])")
    d = (wt.ndim - 2) // 2
    xb, batched = _batched(xt, d, where, f"w of shape {tuple(wt.shape)}")
    strides = per_axis(stride, d, "stride", where)
    c_in, spatial = xb.shape[1], tuple(xb.shape[2:])
    wout, wc, ksize = tuple(wt.shape[1:1 + d]), wt.shape[1 + d], tuple(wt.shape[2 + d:])
    if c_in != wc:
        raise EdgewiseError(f"{where}: x has {c_in} channels (shape {tuple(xt.shape)}) but w of shape "
                            f"{tuple(wt.shape)} expects {wc} (its axis {1 + d}, W[i, j, .., l, ...]); make them equal")
    _check_fit(spatial, ksize, padding, where)
    out = tuple(output_size(n, k, padding, s) for n, k, s in zip(spatial, ksize, strides))
    if out != wout:
        raise EdgewiseError(
            f"{where}: a {fmt(spatial)} input with a {fmt(ksize)} kernel, stride {strides} and padding {padding!r} "
            f"gives a {fmt(out)} output, but w holds kernels for a {fmt(wout)} output; build w with shape "
            f"{(wt.shape[0], *out, wc, *ksize)} or change the input size")
    pos, off = _LETTERS[:d], _OFFSETS[:d]
    patches = windows(xb, ksize, strides, padding)  # (b, l, *pos, *off)
    y = torch.einsum(f"bl{pos}{off},i{pos}l{off}->bi{pos}", patches, wt)
    if bias is not None:
        bt = tensors[2]
        if tuple(bt.shape) != (wt.shape[0], *out):
            raise EdgewiseError(f"{where}: bias of shape {tuple(bt.shape)} must be (C_out, *out) = "
                                f"{(wt.shape[0], *out)}, one value per output unit")
        y = y + bt
    return back(y if batched else y[0], numpy_in)


def tiled_conv(x, kernels, tile=None, bias=None, stride=1, padding: str = "valid"):
    """Tiled convolution (eq. 9.10): ``t`` kernels per axis, output position ``j`` uses kernel ``j % t``.

    Args:
        x: ``(C_in, *spatial)`` or ``(B, C_in, *spatial)``, 1-D or 2-D; numpy or torch.
        kernels: ``K[i, l, m(, n), a(, b)]`` of shape ``(C_out, C_in, *kernel, *tile)``.
        tile: optional check of the tile sizes (an int or ``(row, col)``, each ≥ 1); ``None`` reads them
            from ``kernels``.
        bias: ``None`` or ``(C_out, *tile)``, cycled like the kernels.
        stride: an int or ``(row, col)``.
        padding: ``"valid"``, ``"same"`` or ``"full"`` zero padding.

    Returns:
        ``([B,] C_out, *out)``, the kind of ``x``. ``C_out·C_in·|kernel|·t^d`` weights: ``t^d`` times a
        convolution's, independent of the input size (unlike locally connected layers).

    Example:
        >>> K = torch.tensor([1.0, -1.0]).view(1, 1, 1, 2)  # 1×1 kernels, +1 at even and −1 at odd positions
        >>> tiled_conv(torch.ones(1, 5), K)
        tensor([[ 1., -1.,  1., -1.,  1.]])
    """
    where = "tiled_conv"
    padding = check_padding(padding, where)
    tensors, numpy_in = as_tensors(x, kernels, *([] if bias is None else [bias]), where=where)
    xt, kt = tensors[:2]
    if kt.ndim not in (4, 6):
        raise EdgewiseError(f"{where}: kernels of shape {tuple(kt.shape)} must be (C_out, C_in, k, t) for 1-D or "
                            "(C_out, C_in, kh, kw, t_row, t_col) for 2-D (eq. 9.10's K[i, l, m, n, j % t, k % t])")
    d = (kt.ndim - 2) // 2
    ktile = tuple(kt.shape[2 + d:])
    if tile is not None and per_axis(tile, d, "tile", where) != ktile:
        raise EdgewiseError(f"{where}: tile={tile!r} but kernels of shape {tuple(kt.shape)} have tile sizes {ktile} "
                            f"(their last {d} axes); pass tile=None, or kernels of shape "
                            f"{(*kt.shape[:2 + d], *per_axis(tile, d, 'tile', where))}")
    if min(ktile) < 1:
        raise EdgewiseError(f"{where}: kernels of shape {tuple(kt.shape)} hold no kernel; the tile must be ≥ 1")
    xb, batched = _batched(xt, d, where, f"kernels of shape {tuple(kt.shape)}")
    strides = per_axis(stride, d, "stride", where)
    c_in, spatial, ksize = xb.shape[1], tuple(xb.shape[2:]), tuple(kt.shape[2:2 + d])
    if c_in != kt.shape[1]:
        raise EdgewiseError(f"{where}: x has {c_in} channels (shape {tuple(xt.shape)}) but kernels of shape "
                            f"{tuple(kt.shape)} expect {kt.shape[1]} (K[i, l, ...]'s second axis); make them equal")
    _check_fit(spatial, ksize, padding, where)
    out = tuple(output_size(n, k, padding, s) for n, k, s in zip(spatial, ksize, strides))
    groups = tuple(-(-o // t) for o, t in zip(out, ktile))
    extra = tuple((g * t - o) * s for g, t, o, s in zip(groups, ktile, out, strides))  # round up to whole tiles
    patches = windows(xb, ksize, strides, padding, extra)
    patches = patches[(slice(None), slice(None)) + tuple(slice(0, g * t) for g, t in zip(groups, ktile))]
    # split each output axis j into (J, a) with j = J·t + a; a picks the kernel
    split = [xb.shape[0], c_in]
    for g, t in zip(groups, ktile):
        split += [g, t]
    patches = patches.reshape(*split, *ksize)
    grid = "".join(G + a for G, a in zip("JK", "ac"[:d]))
    off, tl = _OFFSETS[:d], "ac"[:d]
    y = torch.einsum(f"bl{grid}{off},il{off}{tl}->bi{grid}", patches, kt)
    y = y.reshape(y.shape[0], y.shape[1], *(g * t for g, t in zip(groups, ktile)))
    y = y[(slice(None), slice(None)) + tuple(slice(0, o) for o in out)]
    if bias is not None:
        bt = tensors[2]
        if tuple(bt.shape) != (kt.shape[0], *ktile):
            raise EdgewiseError(f"{where}: bias of shape {tuple(bt.shape)} must be (C_out, *tile) = "
                                f"{(kt.shape[0], *ktile)}, cycled over output positions like the kernels")
        for a, (o, t) in enumerate(zip(out, ktile)):
            bt = bt.index_select(1 + a, torch.arange(o, device=bt.device) % t)
        y = y + bt
    return back(y if batched else y[0], numpy_in)
