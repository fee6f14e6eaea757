"""BatchNorms folded into the convolutions that feed them, for the length of a block.

In eval mode a BatchNorm is a per-channel affine map, so ``bn(conv(x))`` equals a convolution with scaled weights
and a shifted bias, in one pass over the activations instead of two forward and two backward (exact algebra;
float rounding differs). Only a convolution whose output goes to the BatchNorm alone is folded, never a layer
whose output is recorded; the weights, biases and forwards are restored after the block.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn as nn

__all__ = ["folded"]

_CONVS = (nn.Conv1d, nn.Conv2d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def _identity(x):
    return x


def _pairs(model: nn.Module, keep: set[str]) -> list[tuple[nn.Module, nn.Module]]:
    """(convolution, BatchNorm) pairs where the BatchNorm is the convolution's only reader (from an fx trace)."""
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception:  # noqa: BLE001 - folding only saves time: a model fx cannot trace runs as it is
        return []
    mods = dict(model.named_modules())
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    pairs = []
    for node in graph.nodes:
        src = node.args[0] if node.op == "call_module" and node.args else None
        if not (isinstance(src, torch.fx.Node) and src.op == "call_module" and len(src.users) == 1):
            continue
        conv, bn = mods.get(src.target), mods.get(node.target)
        if (isinstance(conv, _CONVS) and isinstance(bn, _NORMS) and not bn.training and bn.track_running_stats
                and bn.running_var is not None and calls[src.target] == calls[node.target] == 1
                and not {src.target, node.target} & keep):
            pairs.append((conv, bn))
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
