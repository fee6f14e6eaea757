"""Meta tensors that a few common ops would give, made without running them.

On the meta device torch runs many ops through its Python reference implementations, which take 50 µs to 2 ms
a call; the shape passes (:class:`edgewise._trace._ShapeTracer` as it traces, and the meta pass
:class:`edgewise._trace._ShapeProp`) meet hundreds of them in a model of today. Where torch's own rules give the
result's shape, dtype and strides from the operands at once (contiguous operands of one floating dtype, weights
that fit), :func:`result` and :func:`module_result` make it directly; None elsewhere, and the op runs (and raises
the model's own error where the operands do not fit).
"""

from __future__ import annotations

import functools
import operator

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["result", "module_result"]

_TENSORS = (torch.Tensor, nn.Parameter)


def result(target, args: tuple, kwargs: dict) -> torch.Tensor | None:
    """The meta tensor ``target(*args, **kwargs)`` gives (a function, or a method named by a string with its tensor
    first), where this module makes it directly; None otherwise."""
    rule = _RULES.get(target)
    return None if rule is None else rule(args, kwargs)


def module_result(m: nn.Module, args: tuple, kwargs: dict) -> torch.Tensor | None:
    """The meta tensor leaf layer ``m`` gives for ``args``, where this module makes it directly (``nn.Linear``);
    None otherwise."""
    if type(m) is not nn.Linear or kwargs or len(args) != 1:
        return None
    return _linear((args[0], m.weight, m.bias), {})


def _plain(x, contiguous: bool = True) -> bool:
    """A (contiguous) meta tensor of a floating dtype (no subclass that could change what an op does)."""
    return type(x) in _TENSORS and x.device.type == "meta" and x.dtype.is_floating_point and (
        not contiguous or x.is_contiguous())


def _fits(x: torch.Tensor, shape: tuple, w) -> bool:
    """Whether optional weight ``w`` is None or a tensor of ``x``'s dtype and of ``shape``."""
    return w is None or type(w) in _TENSORS and w.dtype == x.dtype and tuple(w.shape) == shape


def _called(names: tuple, args: tuple, kwargs: dict) -> list | None:
    """The arguments of a call with parameters ``names`` (None for those not given), or None where the call
    passes others (or too many)."""
    if len(args) > len(names) or not set(kwargs) <= set(names[len(args):]):
        return None
    return [*args, *(kwargs.get(k) for k in names[len(args):])]


def _binary(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """``a + b`` (``-``, ``*``, ``/``, ``**``) of contiguous meta tensors of one floating dtype, or of one such tensor
    and a Python number: the broadcast shape, that dtype, contiguous (as torch's elementwise ops give for such
    operands)."""
    if kwargs or len(args) != 2:
        return None
    tensors = [v for v in args if type(v) not in (int, float)]
    if not tensors or not all(map(_plain, tensors)) or len({t.dtype for t in tensors}) != 1:
        return None
    shape = tensors[0].shape if len(tensors) == 1 else torch.broadcast_shapes(*(t.shape for t in tensors))
    return torch.empty(shape, dtype=tensors[0].dtype, device="meta")


def _clamped(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """``torch.clamp(*args, **kwargs)`` where the bounds are tensors that neither broadcast the input nor change its
    dtype, and the input is contiguous (as the output then is); Gemma4-ViT clamps 224 times."""
    x, bounds = (args[0] if args else None), [*args[1:], *kwargs.values()]
    if not isinstance(x, torch.Tensor) or x.device.type != "meta" or not x.is_contiguous() or \
            set(kwargs) - {"min", "max"} or not 1 <= len(bounds) <= 2 or all(b is None for b in bounds):
        return None
    for b in bounds:
        if b is not None and not (isinstance(b, torch.Tensor) and b.dtype == x.dtype and b.dim() <= x.dim() and
                                  all(m in (1, n) for m, n in zip(reversed(b.shape), reversed(x.shape)))):
            return None
    return torch.empty_like(x)


def _linear(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """``F.linear(x, weight, bias)``: x's leading axes and the weight's rows."""
    got = _called(("input", "weight", "bias"), args, kwargs)
    if got is None:
        return None
    x, w, b = got
    if not _plain(x) or x.dim() < 1 or type(w) not in _TENSORS or w.dim() != 2 or w.shape[1] != x.shape[-1] or \
            not _fits(x, tuple(w.shape), w) or not _fits(x, (w.shape[0],), b):
        return None
    return torch.empty((*x.shape[:-1], w.shape[0]), dtype=x.dtype, device="meta")


def _norm(names: tuple, args: tuple, kwargs: dict) -> torch.Tensor | None:
    """``F.layer_norm`` / ``F.rms_norm``: x's shape, contiguous whatever x's layout (as torch gives it), where the
    normalised shape is x's trailing axes and the weights (and bias) have it."""
    got = _called(names, args, kwargs)
    if got is None:
        return None
    x, shape, *weights = got[:-1]  # (eps last: a number)
    shape = tuple(shape) if isinstance(shape, (tuple, list, torch.Size)) and all(type(n) is int for n in shape) else ()
    if not _plain(x, contiguous=False) or not 0 < len(shape) <= x.dim() or \
            tuple(x.shape[x.dim() - len(shape):]) != shape or not all(_fits(x, shape, w) for w in weights) or \
            not isinstance(got[-1], (int, float, type(None))):
        return None
    return torch.empty(x.shape, dtype=x.dtype, device="meta")


def _normalize(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """``F.normalize(x, p, dim, eps)``: x's shape, over an axis x has (no ``out``)."""
    got = _called(("input", "p", "dim", "eps", "out"), args, kwargs)  # (torch passes out=None on to a tracer)
    if got is None:
        return None
    x, _, dim, _, out = got
    dim = 1 if dim is None else dim
    if not _plain(x) or type(dim) is not int or not -x.dim() <= dim < x.dim() or out is not None:
        return None
    return torch.empty_like(x)


def _cat(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """``torch.cat(tensors, dim)`` of contiguous meta tensors of one floating dtype and rank, equal off ``dim``."""
    got = _called(("tensors", "dim"), args, kwargs)
    if got is None:
        return None
    parts, dim = got[0], 0 if got[1] is None else got[1]
    if not isinstance(parts, (list, tuple)) or not parts or type(dim) is not int or not all(map(_plain, parts)):
        return None
    rank = parts[0].dim()
    if rank == 0 or not -rank <= dim < rank:
        return None
    dim %= rank
    if len({(p.dtype, p.dim(), p.shape[:dim], p.shape[dim + 1:]) for p in parts}) != 1:
        return None
    shape = list(parts[0].shape)
    shape[dim] = sum(p.shape[dim] for p in parts)
    return torch.empty(shape, dtype=parts[0].dtype, device="meta")


def _interpolate(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """``F.interpolate`` of a contiguous meta tensor: the size given, or each axis times its factor rounded down
    (see :func:`edgewise._shapes._resized`), contiguous."""
    from ._shapes import _resized, _Unknown

    got = _called(("input", "size", "scale_factor", "mode", "align_corners", "recompute_scale_factor", "antialias"),
                  args, kwargs)
    if got is None or not _plain(got[0]):
        return None
    x, size, scale, mode, align_corners, _, antialias = got
    mode = "nearest" if mode is None else mode
    if antialias and mode not in ("bilinear", "bicubic"):
        return None
    try:
        shape = _resized(tuple(x.shape), size, scale, mode, align_corners)
    except (_Unknown, TypeError, ValueError):
        return None
    return torch.empty(shape, dtype=x.dtype, device="meta")


def _unary(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """An elementwise function of one contiguous meta tensor (``gelu``, ``rsqrt``, ...): its shape and dtype
    (no options but ``gelu``'s ``approximate`` and ``inplace=False``, which torch passes on to a tracer)."""
    if len(args) != 1 or set(kwargs) - {"approximate", "inplace"} or kwargs.get("inplace") or not _plain(args[0]):
        return None
    return torch.empty_like(args[0])


def _reduction(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """``x.mean/sum/amax/amin(dim, keepdim)`` of a contiguous meta tensor over given axes (no ``dtype``):
    see :func:`edgewise._shapes.reduced`."""
    from ._shapes import _Unknown, reduced

    got = _called(("input", "dim", "keepdim"), args, kwargs)
    if got is None or not _plain(got[0]):
        return None
    x, dims, keepdim = got
    try:
        shape = reduced(tuple(x.shape), dims if isinstance(dims, (tuple, list)) else [dims],
                        False if keepdim is None else keepdim)
    except _Unknown:
        return None
    return torch.empty(shape, dtype=x.dtype, device="meta")


def _attention(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """``F.scaled_dot_product_attention`` of meta tensors of one floating dtype (any layout) with the same leading
    axes (no broadcasting, no grouped heads), a mask of the logits' shape or broadcasting to it (boolean or of
    that dtype) or none, no dropout: (…, queries, value features), contiguous, as the meta kernel gives it (its
    math path ends in a matrix product)."""
    got = _called(("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa"),
                  args, kwargs)
    if got is None:
        return None
    q, k, v, mask, dropout, causal, scale, gqa = got
    if not all(_plain(t, contiguous=False) for t in (q, k, v)) or len({q.dtype, k.dtype, v.dtype}) != 1 or \
            not 3 <= q.dim() == k.dim() == v.dim() or not q.shape[:-2] == k.shape[:-2] == v.shape[:-2] or \
            q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2] or dropout not in (None, 0, 0.0) or gqa or \
            not isinstance(scale, (int, float, type(None))) or causal not in (None, False, True) or \
            causal and mask is not None:
        return None
    logits = (*q.shape[:-1], k.shape[-2])
    if mask is not None and not (
            type(mask) in _TENSORS and mask.device.type == "meta" and mask.dtype in (torch.bool, q.dtype) and
            mask.dim() <= len(logits) and all(m in (1, n) for m, n in zip(reversed(mask.shape), reversed(logits)))):
        return None
    return torch.empty((*q.shape[:-1], v.shape[-1]), dtype=q.dtype, device="meta")


_BINARY = (operator.add, operator.sub, operator.mul, operator.truediv, operator.pow, torch.add, torch.sub, torch.mul,
           torch.div, torch.pow, "add", "sub", "mul", "div", "pow")  # (in-place forms are left to run)
_UNARY = (F.gelu, F.silu, F.sigmoid, F.tanh, torch.sigmoid, torch.tanh, torch.exp, torch.sqrt, torch.rsqrt, torch.neg,
          torch.abs, operator.neg, "sigmoid", "tanh", "exp", "sqrt", "rsqrt", "neg", "abs")
_REDUCTIONS = (torch.mean, torch.sum, torch.amax, torch.amin, "mean", "sum", "amax", "amin")
_RULES = {**dict.fromkeys(_BINARY, _binary), **dict.fromkeys((torch.clamp, torch.clip, "clamp", "clip"), _clamped),
          **dict.fromkeys(_UNARY, _unary), **dict.fromkeys(_REDUCTIONS, _reduction),
          F.scaled_dot_product_attention: _attention, F.linear: _linear, F.normalize: _normalize, torch.cat: _cat,
          F.interpolate: _interpolate,
          F.layer_norm: functools.partial(_norm, ("input", "normalized_shape", "weight", "bias", "eps")),
          F.rms_norm: functools.partial(_norm, ("input", "normalized_shape", "weight", "eps"))}
