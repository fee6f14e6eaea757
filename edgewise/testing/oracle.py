"""Path counts through autograd on the real, full-width network: the baseline for :func:`edgewise.pathways`.

With every convolution/linear weight set to one, biases to zero, every
activation, normalisation and dropout replaced by the identity, max-pooling by
sum-pooling, average and adaptive pooling by window sums and interpolation
weights by one wherever they are non-zero, the network is linear with
non-negative integer weights, and

    count(p) = d (sum of the selected outputs) / d x[0, 0, p]

is the number of paths from input unit (channel 0, p) to the selected units.
This module computes exactly that, with ``torch.autograd``, at full width and
without looking at edgewise's graph or tracer: the replacements are made on
the fly by a :class:`torch.overrides.TorchFunctionMode` that intercepts the
functional calls inside the model's own ``forward`` (so they apply equally to
``nn.Conv2d`` modules and to ``F.relu`` written in a forward method).

Which tensors "carry paths" is read off ``requires_grad``: the input requires
grad and the copied parameters do not, so ``x * scale`` with a constant
``scale`` is the identity (as in the engine) while ``a * b`` of two input-
dependent tensors has the paths of both operands (``a + b``).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from ..errors import EdgewiseError

__all__ = ["ones_network", "autograd_pathways"]

#: per-unit ops: the identity in the pathway semantics
_IDENTITY = {
    "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "hardswish", "hardsigmoid", "silu", "gelu", "mish",
    "sigmoid", "sigmoid_", "tanh", "tanh_", "elu", "elu_", "selu", "selu_", "celu", "celu_", "leaky_relu",
    "leaky_relu_", "softplus", "softsign", "logsigmoid", "tanhshrink", "hardshrink", "softshrink", "threshold",
    "threshold_", "prelu", "rrelu", "rrelu_",
    "dropout", "dropout_", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout",
    "batch_norm", "instance_norm", "layer_norm", "group_norm",
    "clamp", "clamp_", "clip", "clip_", "abs", "abs_", "exp", "exp_", "neg", "neg_", "__neg__", "__pos__",
    "stochastic_depth",
}
#: elementwise binary ops with the paths of both (input-dependent) operands
_BINARY = {
    "add", "add_", "__add__", "__radd__", "__iadd__", "sub", "sub_", "__sub__", "__rsub__", "__isub__", "rsub",
    "subtract", "mul", "mul_", "__mul__", "__rmul__", "__imul__", "multiply", "div", "div_", "__truediv__",
    "__rtruediv__", "__itruediv__", "true_divide", "divide",
}
#: ops that are neither linear in the counts nor a per-unit map: refuse rather than guess
_REFUSE = {
    "softmax", "log_softmax", "softmin", "matmul", "mm", "bmm", "einsum", "baddbmm", "addmm",
    "scaled_dot_product_attention", "multi_head_attention_forward", "glu", "pow", "__pow__", "sqrt", "rsqrt",
    "var", "std", "max", "min", "amin", "argmax", "sort", "topk", "__matmul__", "__rmatmul__",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "grid_sample", "bilinear", "embedding",
    "local_response_norm", "lp_pool1d", "lp_pool2d", "fractional_max_pool2d", "fractional_max_pool3d",
}


def ones_network(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` that computes the pathway network (see the module docstring).

    Convolution and linear weights are set to one and biases to zero in the copy
    (its parameters no longer require grad); everything else is substituted while
    the returned module's ``forward`` runs. ``model`` itself is left untouched.
    """
    net = copy.deepcopy(model)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
                m.weight.fill_(1.0)
                if m.bias is not None:
                    m.bias.zero_()
    for p in net.parameters():
        p.requires_grad_(False)
    return _OnesNetwork(net).eval()


class _OnesNetwork(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with _PathwayMode():
            return self.net(x)


def _live(t) -> bool:
    return isinstance(t, torch.Tensor) and t.requires_grad


def _arg(args, kwargs, i, name, default=None):
    return args[i] if len(args) > i else kwargs.get(name, default)


class _PathwayMode(TorchFunctionMode):
    """Swaps each op for its pathway counterpart while a forward pass runs."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in _IDENTITY and args and _live(args[0]):
            return args[0]
        if name in _BINARY and len(args) >= 2:
            a, b = args[0], args[1]
            if _live(a) or _live(b):
                live = [t for t in (a, b) if _live(t)]
                out = live[0] if len(live) == 1 else live[0] + live[1]
                shape = torch.broadcast_shapes(*(t.shape for t in (a, b) if isinstance(t, torch.Tensor)))
                return out if tuple(out.shape) == tuple(shape) else out.expand(shape)
        if not (args and _live(args[0])):
            return func(*args, **kwargs)
        x = args[0]
        if name in ("conv1d", "conv2d", "conv3d"):
            w = _arg(args, kwargs, 1, "weight")
            rest = [_arg(args, kwargs, i, k, d) for i, (k, d) in
                    enumerate([("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1)], start=3)]
            return func(x, torch.ones_like(w), None, *rest)
        if name == "linear":
            return F.linear(x, torch.ones_like(_arg(args, kwargs, 1, "weight")))
        if name in ("max_pool1d", "max_pool2d", "max_pool1d_with_indices", "max_pool2d_with_indices"):
            if _arg(args, kwargs, 6, "return_indices", False):
                raise EdgewiseError("ones_network: max pooling with return_indices is not supported")
            n = int(name[8])
            return _sum_pool(x, n, _arg(args, kwargs, 1, "kernel_size"), _arg(args, kwargs, 2, "stride"),
                             _arg(args, kwargs, 3, "padding", 0), _arg(args, kwargs, 4, "dilation", 1),
                             _arg(args, kwargs, 5, "ceil_mode", False))
        if name in ("avg_pool1d", "avg_pool2d"):
            n = int(name[8])
            return _sum_pool(x, n, _arg(args, kwargs, 1, "kernel_size"), _arg(args, kwargs, 2, "stride"),
                             _arg(args, kwargs, 3, "padding", 0), 1, _arg(args, kwargs, 4, "ceil_mode", False))
        if name in ("adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d",
                    "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices"):
            n = int(name.split("pool")[1][0])
            size = _arg(args, kwargs, 1, "output_size")
            size = tuple(size) if isinstance(size, (tuple, list)) else (size,) * n
            size = tuple(x.shape[-n + a] if s is None else int(s) for a, s in enumerate(size))
            probe = [_probe(lambda e, s=s: F.adaptive_avg_pool1d(e, s), x.shape[-n + a], x.dtype)
                     for a, s in enumerate(size)]
            return _separable(x, probe)
        if name in ("mean", "amax"):
            dim = _arg(args, kwargs, 1, "dim")
            keep = _arg(args, kwargs, 2, "keepdim", False)
            return x.sum() if dim is None else x.sum(dim=dim, keepdim=keep)
        if name in ("interpolate", "upsample"):
            return _interpolate(x, args, kwargs)
        if name in _REFUSE:
            raise EdgewiseError(f"ones_network: {name} has no pathway counterpart")
        return func(*args, **kwargs)  # linear structural ops: cat, view, flatten, pad, slicing, ...


def _sum_pool(x, n, kernel, stride, padding, dilation, ceil_mode):
    """Sum over each pooling window; padding and ceil-mode overhang read nothing."""
    def tup(v):
        return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n

    k = tup(kernel)
    s = tup(stride if stride not in (None, ()) else kernel)
    p, d = tup(padding), tup(dilation)
    # the real op's output size (PyTorch's ceil-mode rule), from a shape-only run
    meta = torch.empty(x.shape, device="meta")
    pool = F.max_pool1d if n == 1 else F.max_pool2d
    out = pool(meta, k, s, p, d, bool(ceil_mode)).shape[-n:]
    pads = []
    for a in reversed(range(n)):
        need = (out[a] - 1) * s[a] + (k[a] - 1) * d[a] + 1
        pads += [p[a], max(0, need - x.shape[-n + a] - p[a])]
    xp = F.pad(x, pads)
    c = x.shape[1]
    w = torch.ones((c, 1) + k, dtype=x.dtype, device=x.device)
    conv = F.conv1d if n == 1 else F.conv2d
    y = conv(xp, w, None, s, 0, d, c)
    return y[(...,) + tuple(slice(0, o) for o in out)]


def _probe(op, n_in: int, dtype) -> torch.Tensor:
    """0/1 matrix [n_in, n_out] of the inputs each output of a 1-D op reads (non-zero weight)."""
    eye = torch.eye(n_in, dtype=torch.float64)[:, None, :]
    return (op(eye)[:, 0, :] != 0).to(dtype)


def _separable(x, mats):
    """Apply one [n_in, n_out] matrix per trailing spatial axis."""
    n = len(mats)
    for a, m in enumerate(mats):
        axis = x.dim() - n + a
        x = torch.tensordot(x, m.to(x.device), dims=([axis], [0])).movedim(-1, axis)
    return x


def _interpolate(x, args, kwargs):
    n = x.dim() - 2
    size = _arg(args, kwargs, 1, "size")
    scale = _arg(args, kwargs, 2, "scale_factor")
    mode = _arg(args, kwargs, 3, "mode", "nearest")
    align = _arg(args, kwargs, 4, "align_corners")
    recompute = _arg(args, kwargs, 5, "recompute_scale_factor")
    sizes = tuple(size) if isinstance(size, (tuple, list)) else (size,) * n
    scales = tuple(scale) if isinstance(scale, (tuple, list)) else (scale,) * n
    mode1 = {"bilinear": "linear", "trilinear": "linear", "bicubic": None}.get(mode, mode)
    if mode1 is None:
        raise EdgewiseError(f"ones_network: interpolation mode {mode!r} is not supported")
    mats = []
    for a in range(n):
        def op(e, a=a):
            return F.interpolate(e, size=sizes[a], scale_factor=scales[a], mode=mode1,
                                 align_corners=align, recompute_scale_factor=recompute)
        mats.append(_probe(op, x.shape[-n + a], x.dtype))
    return _separable(x, mats)


def _select(shape: tuple[int, ...], to) -> torch.Tensor:
    """0/1 seed over a layer's units (C, *spatial): all, the centre position or one position."""
    seed = torch.zeros(shape, dtype=torch.float64)
    spatial = shape[1:]
    if to == "all" or not spatial:
        seed[...] = 1
    elif to in ("center", "centre"):
        seed[(slice(None),) + tuple((n - 1) // 2 for n in spatial)] = 1
    else:
        pos = (to,) if isinstance(to, int) else tuple(to)
        seed[(slice(None),) + pos] = 1
    return seed


def _capture(net: "_OnesNetwork", layer: str, x: torch.Tensor):
    """Run ``net`` on ``x`` and return what sub-module ``layer`` output on its selected call."""
    name, _, call = layer.partition("#")
    want = int(call or 0)
    try:
        module = net.net.get_submodule(name)
    except AttributeError:
        raise EdgewiseError(f"autograd_pathways: the model has no sub-module {name!r}") from None
    seen = []

    def hook(mod, inputs, output):
        seen.append(output)

    handle = module.register_forward_hook(hook)
    try:
        net(x)
    finally:
        handle.remove()
    if len(seen) <= want:
        raise EdgewiseError(f"autograd_pathways: {name!r} ran {len(seen)} time(s); call #{want} was asked for")
    return seen[want]


def autograd_pathways(model: nn.Module, input_shape, to="all", dtype=torch.float64,
                      layer: str | None = None, scale_log2: int = 0) -> np.ndarray:
    """Path counts from every input position (channel 0) to the selected output units, by autograd.

    Args:
        model: the model (not modified).
        input_shape: C×L or C×H×W.
        to: ``"all"``, ``"center"`` or a position (row, col) of the output map.
        dtype: computation dtype; float64 holds integers exactly up to 2**53.
        layer: count paths to the output of this sub-module (dotted name from
            ``named_modules()``; ``name#k`` for its (k+1)-th call) instead of the model's output.
        scale_log2: the backward pass is seeded with ``2**-scale_log2`` instead of 1,
            so the result is ``counts * 2**-scale_log2`` (exactly: a power of two);
            use it to bring counts beyond float64's range (deep ResNets) back into it.

    Returns:
        float array over the input positions (L or H×W).
    """
    net = ones_network(model).to(dtype)
    x = torch.zeros((1, *input_shape), dtype=dtype, requires_grad=True)
    if layer is None:
        y = net(x)
    else:
        y = _capture(net, layer, x)
    if not isinstance(y, torch.Tensor):
        raise EdgewiseError(f"autograd_pathways: the model returns {type(y).__name__}, not a tensor")
    seed = _select(tuple(y.shape[1:]), to).to(dtype)[None] * 2.0 ** -scale_log2
    (grad,) = torch.autograd.grad(y, x, seed)
    return grad[0, 0].detach().cpu().numpy()
