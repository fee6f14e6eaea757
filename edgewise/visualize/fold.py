"""BatchNorms folded into the convolutions that feed them, and 1×1 convolutions as matrix products, for the
length of a block.

In eval mode a BatchNorm is a per-channel affine map, so ``bn(conv(x))`` equals a convolution with scaled weights
and a shifted bias, in one pass over the activations instead of two forward and two backward (exact algebra;
float rounding differs). Only a convolution whose output goes to the BatchNorm alone is folded, never a layer
whose output is recorded; the weights, biases and forwards are restored after the block.

On channels-last maps (the crops are), :func:`channels_last_forms` computes a 1×1 convolution (stride 1, no
padding, one group) as the matrix product of the (N·H·W, C) rows with the weight, forward and backward, without
the copies to and from the standard layout that a CPU's convolution makes for it (float rounding may differ),
and a constant pad as one copy and its border strips instead of a fill of the whole output and a copy (the same
values).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn as nn
import torch.nn.functional as F

from .memo import memo, remember

__all__ = ["folded", "channels_last_forms"]

_CONVS = (nn.Conv1d, nn.Conv2d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def _identity(x):
    return x


def _pairs(model: nn.Module, keep: set[str]) -> list[tuple[nn.Module, nn.Module]]:
    """(convolution, eval-mode BatchNorm) pairs where the BatchNorm is the convolution's only reader (the graph's
    answer, an fx trace, kept in the model's :func:`~edgewise.visualize.memo.memo`)."""
    known = memo(model)
    key = ("sole readers", frozenset(keep))
    names = known[key] if key in known else remember(known, key, _sole_readers(model, frozenset(keep)))
    mods = dict(model.named_modules())
    pairs = [(mods[c], mods[b]) for c, b in names]
    return [(conv, bn) for conv, bn in pairs if isinstance(conv, _CONVS) and isinstance(bn, _NORMS)
            and not bn.training and bn.track_running_stats and bn.running_var is not None]


def _sole_readers(model: nn.Module, keep: frozenset[str]) -> list[tuple[str, str]]:
    """From an fx trace, the (module, module) names where the second, called once, alone reads the first's
    output, called once, and neither is in ``keep``."""
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception:  # noqa: BLE001 - folding only saves time: a model fx cannot trace runs as it is
        return []
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    pairs = []
    for node in graph.nodes:
        src = node.args[0] if node.op == "call_module" and node.args else None
        if (isinstance(src, torch.fx.Node) and src.op == "call_module" and len(src.users) == 1
                and calls[src.target] == calls[node.target] == 1 and not {src.target, node.target} & keep):
            pairs.append((src.target, node.target))
    return pairs


@contextlib.contextmanager
def folded(model: nn.Module, keep: set[str]):
    """Within the block, every eval-mode BatchNorm that alone reads a convolution's output is folded into it
    (layers named in ``keep`` are left as they are); yields how many were folded."""
    saved = []
    try:
        with torch.no_grad():
            for conv, bn in _pairs(model, keep):
                scale = torch.rsqrt(bn.running_var + bn.eps)
                if bn.weight is not None:
                    scale = scale * bn.weight
                shift = -bn.running_mean * scale + (bn.bias if bn.bias is not None else 0)
                bias = shift if conv.bias is None else conv.bias * scale + shift
                saved.append((conv, bn, conv.weight.data, conv.bias))
                conv.weight.data = conv.weight.data * scale.view(-1, *([1] * (conv.weight.ndim - 1)))
                conv.bias = nn.Parameter(bias, requires_grad=False)
                bn.forward = _identity
        yield len(saved)
    finally:
        for conv, bn, weight, bias in reversed(saved):
            conv.weight.data = weight
            conv.bias = bias
            del bn.forward


def _is_pointwise(m: nn.Module) -> bool:
    """A plain 2-D 1×1 convolution (its class's forward, not replaced on the instance) that reads each position
    alone: stride 1, no padding or dilation, one group."""
    return (isinstance(m, nn.Conv2d) and type(m).forward is nn.Conv2d.forward and "forward" not in vars(m)
            and m.kernel_size == (1, 1) and m.stride == (1, 1) and m.padding in ((0, 0), "valid")
            and m.dilation == (1, 1) and m.groups == 1)


def _is_constant_pad(m: nn.Module) -> bool:
    """A plain 2-D constant (or zero) pad that only adds pixels."""
    return (isinstance(m, nn.ConstantPad2d) and type(m).forward is nn.ConstantPad2d.forward
            and "forward" not in vars(m) and min(m.padding) >= 0)


def _channels_last(x: torch.Tensor) -> bool:
    return x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last)


def _as_matmul(conv: nn.Conv2d):
    def forward(x: torch.Tensor) -> torch.Tensor:
        if _channels_last(x):
            # (N, H, W, C) rows times the weight; the result's standard view is channels-last again
            return F.linear(x.permute(0, 2, 3, 1), conv.weight.flatten(1), conv.bias).permute(0, 3, 1, 2)
        return nn.Conv2d.forward(conv, x)
    return forward


class _Pad(torch.autograd.Function):
    """A constant pad of a channels-last map written as one copy and the border strips (``F.pad`` fills the
    whole output first, then copies); its gradient is the inner window of the output's."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, padding: tuple[int, int, int, int], value: float) -> torch.Tensor:
        left, right, top, bottom = padding
        h, w = x.shape[2:]
        out = torch.empty((*x.shape[:2], top + h + bottom, left + w + right), dtype=x.dtype, device=x.device,
                          memory_format=torch.channels_last)
        out[:, :, top:top + h, left:left + w] = x
        for strip in (out[:, :, :top], out[:, :, top + h:], out[:, :, top:top + h, :left],
                      out[:, :, top:top + h, left + w:]):
            strip.fill_(value)
        ctx.window = (slice(top, top + h), slice(left, left + w))
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad[(slice(None), slice(None), *ctx.window)], None, None


def _as_one_copy(pad: nn.ConstantPad2d):
    def forward(x: torch.Tensor) -> torch.Tensor:
        return _Pad.apply(x, tuple(pad.padding), pad.value) if _channels_last(x) else nn.ConstantPad2d.forward(pad, x)
    return forward


@contextlib.contextmanager
def channels_last_forms(model: nn.Module):
    """Within the block, on channels-last inputs, every plain 1×1 convolution computes as a matrix product and
    every plain 2-D constant pad as one copy (other inputs as before; the same values, up to float rounding in
    the products); yields how many layers do."""
    layers = [(m, _as_matmul(m)) for m in model.modules() if _is_pointwise(m)]
    layers += [(m, _as_one_copy(m)) for m in model.modules() if _is_constant_pad(m)]
    try:
        for m, forward in layers:
            m.forward = forward
        yield len(layers)
    finally:
        for m, _ in layers:
            vars(m).pop("forward", None)
