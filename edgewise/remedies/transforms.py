"""One convolution in, its remedied replacement out: the per-layer transforms the registry names.

Each transform takes an ``nn.Conv1d`` / ``nn.Conv2d`` (a plain one or a remedy layer)
and returns the layer that replaces it, sharing its ``weight`` and ``bias``
Parameters. It may change the layer it is given (``apply`` hands it a layer of
a deep copy), and never touches PyTorch's global random state.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from ..errors import EdgewiseError
from .functional import conv_pads
from .globalconv import GlobalConv1d, GlobalConv2d, _Global
from .layers import (CoordConv1d, CoordConv2d, PaddedConv1d, PaddedConv2d, PartialConv1d, PartialConv2d, RemedyConv,
                     _Coord)

__all__ = ["geometry", "describe", "to_padding", "to_nonoverlapping", "to_coordconv", "to_global"]

_CLASSES = {"padded": (PaddedConv1d, PaddedConv2d), "partial": (PartialConv1d, PartialConv2d),
            "coord": (CoordConv1d, CoordConv2d), "global": (GlobalConv1d, GlobalConv2d)}


def geometry(conv: nn.Module) -> tuple[tuple[tuple[int, int], ...], str]:
    """Per-axis ``(before, after)`` padding and padding mode of any nn.Conv1d / nn.Conv2d."""
    if isinstance(conv, RemedyConv):
        return conv.pads, conv.padding_mode
    return conv_pads(conv.padding, tuple(conv.kernel_size), conv.dilation), conv.padding_mode


def _fmt_pads(pads) -> str:
    if all(lo == hi for lo, hi in pads):
        return str(tuple(lo for lo, _ in pads))
    return str(tuple(tuple(p) for p in pads))


def describe(conv: nn.Module, pads=None, mode=None) -> dict[str, str]:
    """What a change record compares: padding, stride and the added connections of a layer. A layer that pads
    nothing has no padding mode to tell (a valid convolution made circular computes what it did)."""
    if pads is None:
        pads, mode = geometry(conv)
    padding = _fmt_pads(pads) + (f" {mode}" if any(q for p in pads for q in p) else "")
    out = {"padding": padding, "stride": str(tuple(conv.stride))}
    if isinstance(conv, _Coord):
        out["coordinates"] = f"{conv.coord_channels} channels" + (" (with radius)" if conv.with_r else "")
    if isinstance(conv, _Global):
        out["global connections"] = f"{conv.n_global} per position (seed {conv.seed})"
    return out


def _build(kind: str, conv: nn.Module, pads, mode: str, **extra) -> nn.Module:
    """A remedy layer with ``conv``'s geometry and its very Parameters; nothing is randomly initialised."""
    cls = _CLASSES[kind][len(conv.kernel_size) - 1]
    w = conv.weight
    layer = nn.utils.skip_init(cls, conv.in_channels, conv.out_channels, tuple(conv.kernel_size),
                               tuple(conv.stride), pads, tuple(conv.dilation), conv.groups, conv.bias is not None,
                               mode, device=w.device, dtype=w.dtype, **extra)
    layer.weight = conv.weight
    if conv.bias is not None:
        layer.bias = conv.bias
    layer.train(conv.training)
    return layer


def _init_new(layer: nn.Module, tensor: torch.Tensor, zero_init: bool, seed: int) -> None:
    with torch.no_grad():
        if zero_init:
            tensor.zero_()
        else:  # the layer's own default range, from an explicit generator
            g = torch.Generator().manual_seed(seed)
            bound = 1 / math.sqrt(layer.extra_fan_in())
            tensor.copy_(torch.rand(tensor.shape, generator=g, dtype=torch.float64).mul_(2 * bound).sub_(bound))


#: how much a padding mode pads: half a window, a whole one, none, or each layer's own amount
AMOUNTS = ("same", "full", "valid", "keep")


def check_amount(amount: str) -> None:
    if amount not in AMOUNTS:
        raise EdgewiseError(f"amount={amount!r}: choose 'same', 'full', 'valid' or 'keep' (the layer's own padding)")


def _amounts(conv: nn.Module, amount: str, current) -> tuple[tuple[int, int], ...]:
    """The new ``(before, after)`` per axis. ``"same"`` keeps the layer's own amount on an axis where its
    windows do not overlap (extent (k−1)·d + 1 ≤ stride: a patchify stem, a 2×2/2 downsampling): half a window
    there would shift every window off the grid it tiles and leave the last pixels unread."""
    check_amount(amount)
    if amount == "keep":
        return current
    pads = conv_pads(amount, tuple(conv.kernel_size), conv.dilation)
    if amount != "same":
        return pads
    n = len(pads)
    extents = [(k - 1) * d + 1 for k, d in zip(conv.kernel_size, _per_axis(conv.dilation, n))]
    return tuple(cur if e <= s else p for p, cur, e, s in zip(pads, current, extents, _per_axis(conv.stride, n)))


def to_padding(conv: nn.Module, mode: str, amount: str = "same", *, name: str = "", pads=None,
               current_mode=None) -> nn.Module:
    """Pad ``amount`` (valid/same/full/keep) with ``mode``: a Padded/PartialConv, or the same Coord/GlobalConv.

    ``pads``/``current_mode`` override the layer's own padding (a folded Pad layer before it).
    """
    if pads is None:
        pads, current_mode = geometry(conv)
    new_pads = _amounts(conv, amount, pads)
    if isinstance(conv, (_Coord, _Global)):
        conv.set_padding(new_pads, mode)
        return conv
    return _build("partial" if mode == "partial" else "padded", conv, new_pads, mode)


def _per_axis(value, n: int) -> tuple:
    """A layer's int-or-tuple argument (kernel size, stride, padding) as one value per axis."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def to_nonoverlapping(conv: nn.Module, *, name: str = "", pads=None, current_mode=None) -> nn.Module:
    """Stride = kernel size on every axis (a larger stride is kept): windows no longer overlap.

    Each input is then read by at most one output of the layer (with dilation d, when gcd(k, d) = 1).
    The padding is kept; the output shrinks by about the kernel size per axis (a documented shape change).
    """
    if pads is None:
        pads, current_mode = geometry(conv)
    if not isinstance(conv, RemedyConv) and isinstance(conv.padding, str) and conv.padding == "same":
        conv = _build("padded", conv, pads, current_mode)  # PyTorch refuses padding='same' with stride > 1
    conv.stride = tuple(max(k, s) for k, s in zip(conv.kernel_size, conv.stride))
    if isinstance(conv, _Global) and conv._drawn_for is not None:
        conv.draw_global(conv._drawn_for)  # the output size changed
    return conv


def _refuse_extra(conv: nn.Module, name: str, remedy: str) -> None:
    if isinstance(conv, (_Coord, _Global)):
        raise EdgewiseError(f"layer {name!r} is already a {type(conv).__name__}; coordconv and global do not "
                            f"stack. Apply {remedy!r} to the original model, or pass layers=[...] without it")


def to_coordconv(conv: nn.Module, with_r: bool = False, zero_init: bool = True, seed: int = 0, *, name: str = "",
                 pads=None, current_mode=None) -> nn.Module:
    """A CoordConv with ``conv``'s weights; the coordinate weights start at 0 (same function) unless ``zero_init=False``."""
    _refuse_extra(conv, name, "coordconv")
    if pads is None:
        pads, current_mode = geometry(conv)
    layer = _build("coord", conv, pads, current_mode, with_r=with_r)
    _init_new(layer, layer.coord_weight, zero_init, seed)
    return layer


def to_global(conv: nn.Module, n_global: int = 8, seed: int = 0, zero_init: bool = True, *, name: str = "",
              pads=None, current_mode=None) -> nn.Module:
    """A GlobalConv with ``conv``'s weights; the global weights start at 0 (same function) unless ``zero_init=False``.

    The connections are drawn from ``seed`` at the first forward (``apply`` runs one when it knows the
    input shape).
    """
    _refuse_extra(conv, name, "global")
    if pads is None:
        pads, current_mode = geometry(conv)
    layer = _build("global", conv, pads, current_mode, n_global=n_global, seed=seed)
    with torch.no_grad():  # skip_init left the buffers uninitialised
        layer.global_input_size.zero_()
    _init_new(layer, layer.global_weight, zero_init, seed)
    return layer
