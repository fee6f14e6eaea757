"""The remedies as functions: padding of any mode, partial, coordinate and global convolutions.

Every function works for 1-D (``N×C×L``) and 2-D (``N×C×H×W``) inputs; the
dimension comes from the weight (``O×C/groups×k`` or ``O×C/groups×kh×kw``).
``padding`` is an int, a per-axis tuple of ints, a per-axis tuple of
``(before, after)`` pairs, or one of ``"valid"``, ``"same"`` (``(k−1)·d`` split,
the odd extra tap after, as PyTorch and :func:`edgewise.nets.padding_amounts`)
and ``"full"`` (``(k−1)·d`` on each side: the output grows).
Tensors that depend only on the input size (partial-convolution ratios,
coordinate channels, mirror indices) are built once per size/device/dtype.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import torch
import torch.nn.functional as F

from .._pad import pad
from ..errors import EdgewiseError
from ..nets import padding_amounts

__all__ = ["pad", "conv_pads", "padded_conv", "partial_conv", "partial_ratio", "coord_channels", "coord_conv",
           "global_indices", "global_conv", "MODES"]

#: padding modes of :func:`pad` and :func:`padded_conv` (``partial``: zeros, then re-weighting)
MODES = ("zeros", "reflect", "replicate", "circular", "symmetric", "partial")


def _tuple(v, n: int) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def conv_pads(padding, kernel: Sequence[int], dilation=1) -> tuple[tuple[int, int], ...]:
    """Per-axis ``(before, after)`` padding of a convolution, from any ``padding`` spelling."""
    n = len(kernel)
    dil = _tuple(dilation, n)
    if isinstance(padding, str):
        if padding not in ("valid", "same", "full"):
            raise EdgewiseError(f"unknown padding {padding!r}: use 'valid', 'same', 'full', an int or per-axis ints")
        return tuple(padding_amounts(padding, k, d) for k, d in zip(kernel, dil))
    pads = tuple(tuple(int(q) for q in p) if isinstance(p, (tuple, list)) else (int(p), int(p))
                 for p in _tuple(padding, n))
    if len(pads) != n or any(len(p) != 2 or min(p) < 0 for p in pads):
        raise EdgewiseError(f"padding {padding!r} must give {n} non-negative amounts or (before, after) pairs")
    return pads


def _fpad(pads) -> tuple[int, ...]:
    """Per-axis pairs → F.pad order (last axis first)."""
    return tuple(q for p in reversed(pads) for q in p)


def _conv_fn(weight: torch.Tensor):
    if weight.dim() not in (3, 4):
        raise EdgewiseError(f"weight of shape {tuple(weight.shape)}: expected a 1-D (O×C×k) or 2-D (O×C×kh×kw) kernel")
    return F.conv1d if weight.dim() == 3 else F.conv2d


@functools.lru_cache(maxsize=256)
def _ratio(size, kernel, stride, pads, dilation, device, dtype) -> torch.Tensor:
    with torch.inference_mode(False), torch.no_grad():
        ones = torch.ones((1, 1, *size), device=device, dtype=torch.float64)
        taps = torch.ones((1, 1, *kernel), device=device, dtype=torch.float64)
        conv = F.conv1d if len(size) == 1 else F.conv2d
        count = conv(F.pad(ones, _fpad(pads)), taps, None, stride, 0, dilation)
        ratio = torch.where(count > 0, math.prod(kernel) / count.clamp(min=1), torch.zeros_like(count))
        return ratio.to(dtype)


def partial_ratio(size, kernel, stride=1, padding=0, dilation=1, device=None, dtype=torch.float32) -> torch.Tensor:
    """``1×1×out`` map of (taps in the window) / (taps inside the image); 0 where no tap is inside. Cached."""
    n = len(size)
    pads = conv_pads(padding, tuple(kernel), dilation)
    return _ratio(tuple(int(s) for s in size), tuple(kernel), _tuple(stride, n), pads, _tuple(dilation, n),
                  torch.device(device or "cpu"), dtype)


def _local(x, weight, bias, stride, pads, dilation, groups, mode):
    """The sliding-window part: pad, convolve, and for ``partial`` re-weight before adding the bias."""
    conv = _conv_fn(weight)
    n = weight.dim() - 2
    stride, dilation = _tuple(stride, n), _tuple(dilation, n)
    if mode == "partial":
        out = conv(pad(x, _fpad(pads)), weight, None, stride, 0, dilation, groups)
        out = out * _ratio(tuple(x.shape[2:]), tuple(weight.shape[2:]), stride, pads, dilation, x.device, out.dtype)
        return out if bias is None else out + bias.view(1, -1, *(1,) * n)
    if mode == "zeros" and all(lo == hi for lo, hi in pads):
        return conv(x, weight, bias, stride, tuple(lo for lo, _ in pads), dilation, groups)
    return conv(pad(x, _fpad(pads), mode), weight, bias, stride, 0, dilation, groups)


def padded_conv(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """Convolution with any padding amount and mode (``symmetric`` and ``partial`` included).

    Example:
        >>> y = padded_conv(torch.ones(1, 1, 5), torch.ones(1, 1, 3), padding="same", padding_mode="symmetric")
        >>> y.tolist()
        [[[3.0, 3.0, 3.0, 3.0, 3.0]]]
    """
    if padding_mode not in MODES:
        raise EdgewiseError(f"unknown padding mode {padding_mode!r}; choose one of {', '.join(MODES)}")
    pads = conv_pads(padding, tuple(weight.shape[2:]), dilation)
    return _local(x, weight, bias, stride, pads, dilation, groups, padding_mode)


def partial_conv(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Partial-convolution padding (Liu et al. 2018): ``W·(X⊙M) · Σ1/ΣM + b``, zeros outside the image."""
    return padded_conv(x, weight, bias, stride, padding, dilation, groups, "partial")


@functools.lru_cache(maxsize=64)
def _coords(size, with_r, device, dtype) -> torch.Tensor:
    with torch.inference_mode(False), torch.no_grad():
        axes = [torch.linspace(-1, 1, n, dtype=torch.float64) if n > 1 else torch.zeros(1, dtype=torch.float64)
                for n in size]
        chans = list(torch.meshgrid(*axes, indexing="ij"))  # row, col
        if with_r:
            chans.append(torch.sqrt(sum(c * c for c in chans)))
        return torch.stack(chans)[None].to(device=device, dtype=dtype)


def coord_channels(size: Sequence[int], with_r: bool = False, device=None, dtype=torch.float32) -> torch.Tensor:
    """``1×c×size`` coordinate channels: row then column in [−1, 1] (one channel in 1-D), then the radius
    ``sqrt(row² + col²)`` if ``with_r``. An axis of length 1 has coordinate 0. Cached."""
    return _coords(tuple(int(s) for s in size), bool(with_r), torch.device(device or "cpu"), dtype)


def coord_conv(x, weight, coord_weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
               padding_mode="zeros", with_r=False):
    """CoordConv (Liu et al. 2018): convolve ``cat(x, coordinates)``; ``coord_weight`` is ``O×c×k…``.

    The coordinate channels are padded like the input and feed every output channel, so the result is
    ``conv(x, weight) + conv(coords, coord_weight)`` (one convolution of the concatenation when groups=1).
    """
    n = weight.dim() - 2
    c = coord_channels(x.shape[2:], with_r, x.device, x.dtype)
    if coord_weight.shape[1] != c.shape[1] or coord_weight.shape[0] != weight.shape[0]:
        raise EdgewiseError(f"coord_weight of shape {tuple(coord_weight.shape)} must be "
                            f"{weight.shape[0]}×{c.shape[1]}×kernel for {n}-D input{' with radius' * with_r}")
    pads = conv_pads(padding, tuple(weight.shape[2:]), dilation)
    c = c.expand(x.shape[0], *c.shape[1:])
    if groups == 1:
        return _local(torch.cat([x, c], 1), torch.cat([weight, coord_weight], 1), bias, stride, pads, dilation, 1,
                      padding_mode)
    out = _local(x, weight, None, stride, pads, dilation, groups, padding_mode)
    out = out + _local(c, coord_weight, None, stride, pads, dilation, 1, padding_mode)
    return out if bias is None else out + bias.view(1, -1, *(1,) * n)


def global_indices(input_size: Sequence[int], output_size: Sequence[int], n_global: int,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """``output_size × n_global`` flat input positions (``row·W + col``), distinct per output position.

    Each output position draws ``n_global`` of the ``prod(input_size)`` positions uniformly without
    replacement, from ``generator`` (CPU). A map with fewer positions than ``n_global`` is read whole
    (in random order) and the remaining slots repeat positions drawn uniformly.
    """
    n_in, n_out = math.prod(input_size), math.prod(output_size)
    if n_global < 1:
        raise EdgewiseError(f"n_global must be at least 1, got {n_global}")
    if n_global > n_in:
        whole = torch.rand(n_out, n_in, generator=generator).argsort(1)
        extra = torch.randint(n_in, (n_out, n_global - n_in), generator=generator)
        idx = torch.cat([whole, extra], 1)
    elif n_in * n_out <= 1 << 22 or n_global * 4 > n_in:  # small: exact sampling by sorting random keys
        idx = torch.rand(n_out, n_in, generator=generator).argsort(1)[:, :n_global]
    else:  # large: draw with replacement, redraw the few rows that repeat a position
        idx = torch.randint(n_in, (n_out, n_global), generator=generator)
        while True:
            s = idx.sort(1).values
            bad = (s[:, 1:] == s[:, :-1]).any(1).nonzero().flatten()
            if not len(bad):
                break
            idx[bad] = torch.randint(n_in, (len(bad), n_global), generator=generator)
    return idx.reshape(*output_size, n_global)


def _mix(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``x`` (B, C, N) mixed over its channels by ``weight`` (groups, O/groups, C/groups), group by group: (B, O, N)."""
    g, _, cg = weight.shape
    return torch.matmul(weight, x.reshape(x.shape[0], g, cg, x.shape[-1])).reshape(x.shape[0], -1, x.shape[-1])


def global_conv(x, weight, global_weight, global_index, bias=None, stride=1, padding=0, dilation=1, groups=1,
                padding_mode="zeros"):
    """A convolution plus fixed random global connections (see :class:`edgewise.remedies.GlobalConv2d`).

    ``out[b, o, p] = conv(x)[b, o, p] + Σ_j Σ_c global_weight[o, c, j] · x[b, c, global_index[p, j]]``
    (``c`` over the input channels of ``o``'s group; ``x`` flattened over its spatial axes).
    """
    n = weight.dim() - 2
    pads = conv_pads(padding, tuple(weight.shape[2:]), dilation)
    local = _local(x, weight, None, stride, pads, dilation, groups, padding_mode)
    B, C, O, G = x.shape[0], x.shape[1], weight.shape[0], global_index.shape[-1]
    if tuple(global_index.shape[:-1]) != tuple(local.shape[2:]):
        raise EdgewiseError(f"global_index is drawn for a {'×'.join(map(str, global_index.shape[:-1]))} output, "
                            f"but this input gives {'×'.join(map(str, local.shape[2:]))}; redraw it for this size")
    if tuple(global_weight.shape) != (O, C // groups, G):
        raise EdgewiseError(f"global_weight of shape {tuple(global_weight.shape)} must be {(O, C // groups, G)}")
    # per connection j: mix the channels (a matrix product with global_weight[..., j]; a 1×1 convolution would copy
    # the input once per j), then pick each output position's input; the backward pass keeps nothing of size
    # G × input (gathering the input taps first kept G copies of every layer's input: ~1 GB per ResNet-50 pass at
    # 224×224). A layer with at most a quarter of its input's positions (stride 2 in 2-D) picks first: mixing every
    # input position would cost 4× the products, and the G picks it keeps are at most 2× its input.
    flat, index = x.flatten(2), global_index.reshape(-1, G).to(x.device)
    weights = global_weight.reshape(groups, O // groups, C // groups, G).permute(3, 0, 1, 2).contiguous().unbind(0)
    pick_first = 4 * index.shape[0] <= flat.shape[-1]
    extra = None
    for j in range(G):
        if pick_first:
            part = _mix(weights[j], flat.index_select(-1, index[:, j]))
        else:
            part = _mix(weights[j], flat).index_select(-1, index[:, j])
        extra = part if extra is None else extra + part
    out = local + extra.reshape(local.shape)
    return out if bias is None else out + bias.view(1, -1, *(1,) * n)
