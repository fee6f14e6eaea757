"""Convolution vs cross-correlation (kernel flipping), and stride as downsampling.

Goodfellow et al., *Deep Learning*, §9.1 and §9.5, 0-based. Cross-correlation (what
``torch.nn.Conv2d`` computes, eq. 9.7)::

    Z[i, j, k] = Σ_{l,m,n} V[l, j·s + m − p, k·s + n − p'] K[i, l, m, n]

and true convolution flips the kernel: ``K[i, l, kh−1−m, kw−1−n]`` in place of
``K[i, l, m, n]`` (eq. 9.4 up to the padding offset). ``p, p'`` are the zeros added
before the row and column axes (see :func:`output_size`).

Output sizes per axis for an input of length n and a kernel of length k (stride 1):

* ``"valid"``: no padding, ``n − k + 1`` (the kernel must fit: k ≤ n);
* ``"same"``: k − 1 zeros split as PyTorch's ``padding="same"`` does, ``(k−1)//2`` before and
  the rest after (an even kernel puts the odd one after), output ``n``;
* ``"full"``: k − 1 zeros on each side, ``n + k − 1`` (every partial overlap).

With stride s the output is the unit-stride output sampled at every s-th position,
``⌈unit / s⌉`` long (eq. 9.8; see :func:`strided_as_downsampled`). For an even kernel,
``convolve(..., "same")`` is ``full[⌈(k−1)/2⌉ :][: n]``, one sample later than numpy's and
scipy's ``"same"`` (which start at ``⌊(k−1)/2⌋``): it is the PyTorch split applied to the
flipped kernel, so that ``convolve(x, k) == correlate(x, flip(k))`` holds in every mode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._common import as_tensors, back, check_padding, layout, output_size, pad_input, per_axis

__all__ = ["convolve", "correlate", "strided_as_downsampled", "output_size", "flip"]

_CONV = {1: F.conv1d, 2: F.conv2d}


def flip(k, d: int | None = None):
    """Reverse the last ``d`` axes of a kernel (all of a 1-D/2-D one, the spatial ones of K[out, in, ...]).

    Example:
        >>> flip(torch.tensor([1., 2., 3.]))
        tensor([3., 2., 1.])
    """
    if d is None:
        d = k.ndim if k.ndim <= 2 else k.ndim - 2
    dims = tuple(range(k.ndim - d, k.ndim))
    return torch.flip(k, dims) if isinstance(k, torch.Tensor) else k[(Ellipsis,) + (slice(None, None, -1),) * d].copy()


def _sliding(x, k, padding, stride, flipped: bool, where: str, downsample: bool = False):
    padding = check_padding(padding, where)
    (xt, kt), numpy_in = as_tensors(x, k, where=where)
    lay = layout(xt, kt, where, padding)
    strides = per_axis(stride, lay.d, "stride", where)
    xb, kb = lay.split(xt, kt)
    if flipped:
        kb = torch.flip(kb, tuple(range(2, 2 + lay.d)))
    ksize = tuple(kb.shape[2:])
    if downsample:  # the dense output, then every s-th sample
        y = _CONV[lay.d](pad_input(xb, ksize, padding), kb)
        y = y[(Ellipsis,) + tuple(slice(None, None, s) for s in strides)]
    else:
        y = _CONV[lay.d](pad_input(xb, ksize, padding), kb, stride=strides)
    return back(lay.merge(y), numpy_in)


def correlate(x, k, padding: str = "valid", stride=1):
    """Cross-correlation (no kernel flip), as ``torch.nn.functional.conv1d/conv2d`` computes it.

    Args:
        x: ``(L,)``/``(H, W)`` single-channel, or ``(C_in, *spatial)``/``(B, C_in, *spatial)``;
            a numpy array or a torch tensor (ints become float64).
        k: same ndim as a single-channel ``x``, else ``K[i, l, m(, n)]`` of shape ``(C_out, C_in, *kernel)``.
        padding: ``"valid"``, ``"same"`` or ``"full"`` zero padding (module docstring: sizes and the split).
        stride: an int or ``(row, col)``; the unit-stride output sampled every ``stride`` positions.

    Returns:
        ``Z`` of the same kind as ``x`` (numpy in, numpy out): ``(L_out,)``/``(H_out, W_out)`` or
        ``([B,] C_out, *out)``. Not commutative: ``correlate(k, x, "full")`` is ``correlate(x, k, "full")``
        reversed.

    Example:
        >>> correlate(np.array([1., 2., 3., 4.]), np.array([1., 0., -1.]))
        array([-2., -2.])
    """
    return _sliding(x, k, padding, stride, False, "correlate")


def convolve(x, k, padding: str = "valid", stride=1):
    """True convolution: cross-correlation with the kernel flipped on every spatial axis.

    Args and Returns as :func:`correlate`; ``convolve(x, k) == correlate(x, flip(k))`` in every mode.
    Single-channel ``"full"`` convolution is commutative: ``convolve(x, k, "full") == convolve(k, x, "full")``
    (this is the polynomial product of the two sequences).

    Example:
        >>> convolve(np.array([1., 2.]), np.array([1., 3.]), "full")  # (1 + 2z)(1 + 3z)
        array([1., 5., 6.])
    """
    return _sliding(x, k, padding, stride, True, "convolve")


def strided_as_downsampled(x, k, stride, padding: str = "valid", flipped: bool = False):
    """Strided convolution computed the wasteful way: unit stride, then keep every s-th output (eq. 9.8).

    Equal to ``correlate(x, k, padding, stride)`` (``convolve`` when ``flipped``) for odd and even sizes
    alike, and ``s²`` times the 2-D work (``s`` in 1-D): the point of the identity is that a strided
    layer is a downsampled dense one, which is why it can skip inputs when ``stride > kernel``.
    Note ``"same"`` here means same-padded *before* the striding (output ``⌈n/s⌉``); TensorFlow's
    ``SAME`` for stride > 1 pads ``max((⌈n/s⌉−1)·s + k − n, 0)`` instead, which can differ.

    Args:
        x, k, padding: as :func:`correlate`.
        stride: an int or ``(row, col)``.
        flipped: use true convolution instead of cross-correlation.

    Returns:
        The strided output, of the kind of ``x``.

    Example:
        >>> x, k = np.arange(9.0), np.array([1., 1.])
        >>> strided_as_downsampled(x, k, 3), correlate(x, k, stride=3)
        (array([ 1.,  7., 13.]), array([ 1.,  7., 13.]))
    """
    return _sliding(x, k, padding, stride, flipped, "strided_as_downsampled", downsample=True)
