"""Output shapes of an fx graph from layer hyper-parameters, in one pass without running anything.

Convolutions, pooling, Linear, normalisation, activations, ``+``/``*``, ``torch.cat``
and flattening cover the classic CNNs (ResNet, DenseNet, VGG); their shapes are
arithmetic on kernel, stride, padding and dilation. :func:`infer_shapes` fills
``node.meta["tensor_meta"]`` as the meta-device pass does, or returns False at the
first node it does not know (or whose operands do not fit, so that the real pass
raises the model's own error): the caller then runs the meta-device pass.
"""

from __future__ import annotations

import functools
import math
import operator
from types import SimpleNamespace

import torch
import torch.fx
import torch.fx._symbolic_trace as _st
import torch.nn as nn
import torch.nn.functional as F

from . import _trace  # (a cycle: _trace imports this module; its functions are looked up when called)
from ._pad import Pad

__all__ = ["infer_shapes"]


class _Unknown(Exception):
    """A node whose shape this pass does not derive."""


def infer_shapes(model: nn.Module, fx_graph: torch.fx.Graph, shape: tuple[int, ...], dtype,
                 modules: dict | None = None) -> bool:
    """Record every node's output shape (batch axis 1 included); False (nothing recorded) if some node is unknown.
    ``modules``: ``dict(model.named_modules())`` if known."""
    if modules is None:
        modules = dict(model.named_modules())
    shapes: dict[torch.fx.Node, tuple[int, ...]] = {}
    values: dict[torch.fx.Node, object] = {}  # shape arithmetic: sizes and numbers (the meta pass's ``value``)
    parts: dict[torch.fx.Node, list] = {}  # the shapes of the tensors of a chunk
    defaults: dict[torch.fx.Node, object] = {}  # optional arguments' placeholders: their defaults
    kept = _kept_whole()
    try:
        for node in fx_graph.nodes:
            if node.op == "output":  # the meta pass records the returned tensor's shape here too
                if isinstance(node.args[0], torch.fx.Node):
                    shapes[node] = shapes[node.args[0]]
                continue
            if node.op == "placeholder" and shapes:  # a later argument: held at its default (``attn_mask=None``)
                defaults[node] = _default(node, values)
                continue
            if _checks_default(node, defaults, values) or _with_values(node, shapes, values, parts, model, dtype):
                continue
            if node.op == "placeholder":
                shapes[node] = (1, *shape)
            elif node.op == "call_module" and type(modules[node.target]) is nn.MultiheadAttention:
                parts[node] = _attention(modules[node.target], node, shapes)
                continue
            elif node.op == "call_module" and type(modules[node.target]) in (nn.LSTM, nn.GRU, nn.RNN):
                parts[node] = _recurrent(modules[node.target], node, shapes)
                continue
            elif node.op == "call_module":
                shapes[node] = _module(modules[node.target], node, shapes)
            elif node.op == "call_function" and node.target is operator.getitem:
                shapes[node] = _indexed(model, node, shapes, values)
            elif node.op == "call_function" and node.target in kept:
                shapes[node] = _window_attention(node, shapes) or _on_meta(model, node, shapes, values, dtype)
            elif node.op == "call_function":
                shapes[node] = _function(node, shapes)
            elif node.op == "call_method":
                shapes[node] = _method(node, shapes)
            else:  # get_attr: a parameter or buffer (its own shape: no batch axis)
                shapes[node] = _attribute(model, node.target)
            if min(shapes[node]) < 1:
                raise _Unknown("empty")  # the model raises its own error, which the meta pass reports
    except (_Unknown, KeyError, TypeError, ValueError, IndexError, ArithmeticError):
        return False
    sizes: dict = {}  # (nodes of one shape share its torch.Size: immutable)
    for node, out in shapes.items():
        size = sizes.get(out)
        if size is None:
            size = sizes[out] = torch.Size(out)
        dt = operator.attrgetter(node.target)(model).dtype if node.op == "get_attr" else dtype
        node.meta["tensor_meta"] = SimpleNamespace(shape=size, dtype=dt)
    for node, value in values.items():
        if _trace.is_arithmetic(value):  # (as the meta pass records them)
            node.meta["value"] = value
    return True


def _default(node: torch.fx.Node, values: dict):
    """The default of a placeholder after the input: an optional argument torch.fx held at it (``concrete_args``),
    which has no shape; a number is recorded as the meta pass records it."""
    default = node.args[0] if len(node.args) == 1 and not node.kwargs else torch
    if type(default) in (int, float, bool):
        values[node] = default
    elif default is not None and type(default) is not str:  # (a tensor, a tuple, or no default: the meta pass)
        raise _Unknown("several inputs")
    return default


def _checks_default(node: torch.fx.Node, defaults: dict, values: dict) -> bool:
    """Whether ``node`` is torch.fx's check of an argument held at its default (``_assert_is_none``, or ``==`` the
    default, then asserted), recording the comparison's value as the meta pass does."""
    first = node.args[0] if node.op == "call_function" and node.args else None
    if not isinstance(first, torch.fx.Node) or first not in defaults:
        return False
    if node.target is _st._assert_is_none:
        return True
    if node.target is not operator.eq or len(node.args) != 2 or node.kwargs:
        raise _Unknown("an optional argument used")
    values[node] = defaults[first] == node.args[1]
    return True


#: integer arithmetic on sizes (``num_channels // groups``) and comparisons of them (``h == self.image_size``)
_ARITHMETIC = (operator.floordiv, operator.mod, operator.mul, operator.add, operator.sub, operator.eq, operator.ne,
               operator.lt, operator.le, operator.gt, operator.ge)


def _with_values(node: torch.fx.Node, shapes: dict, values: dict, parts: dict, model: nn.Module, dtype) -> bool:
    """Record ``node`` if it makes or reads shape arithmetic (``x.size()``, ``x.shape``, indexing a size, ``//``, ``%``,
    ``*``, ``+``, ``-`` (and negation) and comparisons on whole numbers, an assertion of one, ``x.dim()``,
    ``view``/``reshape``/``expand`` with such sizes, as ShuffleNet's channel shuffle and ViT's class token; ``F.pad``
    by such widths, ``F.interpolate`` to such a size), or makes or indexes several tensors (``chunk``, ``split``, ``unbind``); False for any other
    node."""
    fn, args, kwargs = node.target, node.args, node.kwargs
    if node.op == "call_method" and fn == "size":
        x, dim = _first(node, shapes), _arg(node, 1, "dim", None)
        values[node] = torch.Size(x) if dim is None else x[_int(dim)]
    elif node.op == "call_method" and fn == "dim" and len(args) == 1 and not kwargs:
        values[node] = len(_first(node, shapes))
    elif node.op == "call_function" and fn is getattr and len(args) == 2 and args[1] == "shape" and \
            isinstance(args[0], torch.fx.Node) and args[0] in shapes:
        values[node] = torch.Size(shapes[args[0]])
    elif node.op == "call_function" and fn is getattr and len(args) == 2 and args[1] in ("ndim", "device", "dtype") \
            and isinstance(args[0], torch.fx.Node) and args[0] in shapes:  # (the device is the meta pass's)
        x = args[0]
        values[node] = len(shapes[x]) if args[1] == "ndim" else torch.device("meta") if args[1] == "device" else \
            _dtype(model, x, dtype)
    elif node.op == "call_function" and fn is getattr and len(args) == 2 and args[1] in ("type", "index") and \
            type(values.get(args[0])) is torch.device:
        values[node] = getattr(values[args[0]], args[1])
    elif node.op == "call_method" and fn in _CONVERSIONS:
        shapes[node] = _converted(node, shapes, values, model, dtype)
    elif node.op == "call_function" and fn is operator.getitem and isinstance(args[0], torch.fx.Node) and (
            args[0] in values or args[0] in parts):
        index = _index_item(args[1], values)
        if type(index) is not int and not (type(index) is slice and all(
                v is None or type(v) is int for v in (index.start, index.stop, index.step))):
            raise _Unknown("index")
        if args[0] in parts:  # one tensor of a chunk, or several (None: attention's weights not asked for)
            part = parts[args[0]][index]
            if part is not None:
                (shapes if type(index) is int else parts)[node] = part
        else:
            values[node] = values[args[0]][index]
    elif node.op == "call_function" and fn in _ARITHMETIC and any(isinstance(a, torch.fx.Node) for a in args) and \
            all(a in values for a in args if isinstance(a, torch.fx.Node)):  # (not on tensors: those are layers)
        operands = [values[a] if isinstance(a, torch.fx.Node) else a for a in args]
        if kwargs or len(operands) != 2 or any(type(v) is not int for v in operands) and not (
                fn in (operator.eq, operator.ne) and all(type(v) is str for v in operands)):  # (a device's type)
            raise _Unknown("arithmetic")
        values[node] = fn(*operands)
    elif node.op == "call_function" and fn is operator.neg and len(args) == 1 and isinstance(args[0], torch.fx.Node) \
            and type(values.get(args[0])) is int:
        values[node] = -values[args[0]]
    elif node.op == "call_function" and fn is torch._assert and args and isinstance(args[0], torch.fx.Node) and \
            type(values.get(args[0])) is bool:  # (torchvision's ViT checks the input size: nothing to record)
        if not values[args[0]]:
            raise _Unknown("a failed assertion")  # (the model's own error, from the meta pass)
    elif node.op == "call_method" and fn in ("view", "reshape", "expand"):
        sizes = _size_values(node, values)
        shapes[node] = (expanded if fn == "expand" else reshaped)(_first(node, shapes), sizes)
    elif node.op == "call_function" and fn in (F.interpolate, F.upsample):  # (to a size that may be traced)
        size, scale = (_arg(node, i, k, None) for i, k in ((1, "size"), (2, "scale_factor")))
        size, scale = (_numbers(v, values) for v in (size, scale))
        shapes[node] = _resized(_first(node, shapes), size, scale, _arg(node, 3, "mode", "nearest"),
                                _arg(node, 4, "align_corners", None))
    elif node.op == "call_function" and fn is F.pad:  # (widths may be traced numbers: Swin pads to whole windows)
        widths = _numbers(_arg(node, 1, "pad", None), values)
        shapes[node] = _pad_call(_first(node, shapes), widths, _arg(node, 2, "mode", "constant"))
    elif node.op == "call_method" and fn == "chunk" or node.op == "call_function" and fn is torch.chunk:
        parts[node] = _chunks(_first(node, shapes), _int(_arg(node, 1, "chunks", None)), _int(_arg(node, 2, "dim", 0)))
    elif node.op == "call_method" and fn == "unbind" or node.op == "call_function" and fn is torch.unbind:
        parts[node] = _unbound(_first(node, shapes), _int(_arg(node, 1, "dim", 0)))
    elif node.op == "call_method" and fn == "split" or node.op == "call_function" and fn is torch.split:
        sizes = _arg(node, 1, "split_size_or_sections" if node.op == "call_function" else "split_size", None)
        parts[node] = _split(_first(node, shapes), _numbers(sizes, values), _int(_arg(node, 2, "dim", 0)))
    else:
        return False
    return True


#: ``x.to(...)`` and the methods that convert to one dtype
_CONVERSIONS = {"to": None, "type_as": None, "float": torch.float32, "double": torch.float64, "half": torch.float16,
                "bfloat16": torch.bfloat16}


def _dtype(model: nn.Module, x: torch.fx.Node, dtype) -> torch.dtype:
    """The dtype of a tensor node: a parameter's or buffer's own, else the model's (every other node this pass
    records has it: it refuses what would change it)."""
    return operator.attrgetter(x.target)(model).dtype if x.op == "get_attr" else dtype


def _converted(node: torch.fx.Node, shapes: dict, values: dict, model: nn.Module, dtype) -> tuple[int, ...]:
    """The shape of ``x.to(dtype or device, ...)``, ``x.float()``, ``x.type_as(y)`` and the like: x's, where the
    result has the model's dtype (a conversion to another dtype, or ``x.to(y)``, is left to the meta pass)."""
    x = _first(node, shapes)
    if node.target == "type_as":
        other = node.args[1] if len(node.args) == 2 and not node.kwargs else None
        if not isinstance(other, torch.fx.Node) or other not in shapes or _dtype(model, other, dtype) != dtype:
            raise _Unknown("type_as")
        return x
    given = [values.get(v, v) if isinstance(v, torch.fx.Node) else v
             for v in [*node.args[1:], *(v for k, v in node.kwargs.items() if k in ("dtype", "device"))]]
    if _CONVERSIONS[node.target] is not None:
        given.append(_CONVERSIONS[node.target])
    if set(node.kwargs) - {"dtype", "device", "non_blocking", "copy"} or \
            not all(isinstance(v, (torch.dtype, torch.device, str)) for v in given):
        raise _Unknown("conversion")
    to = [v for v in given if isinstance(v, torch.dtype)]
    if len(to) > 1 or (to[0] if to else _dtype(model, node.args[0], dtype)) != dtype:
        raise _Unknown("a conversion to another dtype")
    return x


def _size_values(node: torch.fx.Node, values: dict) -> list:
    """The sizes a ``view``/``reshape``/``expand`` call gives (``x.view(a, b)``, ``x.view((a, b))``, ``x.view(s)``,
    ``shape=``/``size=``), with traced numbers and sizes replaced by their values."""
    args, kwargs = node.args, node.kwargs
    sizes = args[1:] if len(args) > 1 else (kwargs.get("shape", kwargs.get("size")),)
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list, torch.fx.Node)):
        sizes = sizes[0]
    sizes = values[sizes] if isinstance(sizes, torch.fx.Node) else sizes
    return [values[v] if isinstance(v, torch.fx.Node) else v for v in sizes]


def _einsum(node: torch.fx.Node, shapes: dict) -> tuple[int, ...]:
    """The shape of ``torch.einsum(equation, *operands)`` with an explicit output (``"bhid,bhjd->bhij"``, letters
    and spaces only, each letter one length)."""
    ops = node.args[1:]
    if len(ops) == 1 and isinstance(ops[0], (list, tuple)):
        ops = ops[0]
    equation = node.args[0] if node.args else None
    if type(equation) is not str or node.kwargs or not all(isinstance(o, torch.fx.Node) for o in ops):
        raise _Unknown("einsum")
    lhs, arrow, out = equation.replace(" ", "").partition("->")
    terms, size = lhs.split(","), {}
    if not arrow or len(terms) != len(ops) or not all(t.isalpha() for t in terms) or not (out.isalpha() or not out):
        raise _Unknown("einsum")  # (an implicit output or an ellipsis: the meta pass)
    for term, op in zip(terms, ops):
        if len(term) != len(shapes[op]):
            raise _Unknown("einsum")
        for letter, n in zip(term, shapes[op]):
            if size.setdefault(letter, n) != n:
                raise _Unknown("einsum lengths")
    if len(set(out)) != len(out) or any(letter not in size for letter in out):
        raise _Unknown("einsum")
    return tuple(size[letter] for letter in out)


def _kept_whole() -> set:
    """The functions torch.fx keeps whole (registered with ``torch.fx.wrap``: torchvision's Swin attention, patch
    merging and position table; timm's leaf functions)."""
    found = {frame[name] for (_, name), frame in _st._wrapped_fns_to_patch.items() if callable(frame.get(name))}
    return found | set(_trace._timm_autowrap())


def _window_attention(node: torch.fx.Node, shapes: dict) -> tuple[int, ...] | None:
    """The shape of torchvision's ``shifted_window_attention`` (Swin V1 and V2) where its operands fit it: its
    input's, (B, H, W, C) (it pads to whole windows, attends within them and cuts the padding off), for weights
    qkv (3C, C) and proj (C, C), a relative position bias (1, heads, N, N) of N = the window's tokens, heads dividing
    C, and biases and logit scale of those sizes. None otherwise, and for any other function: the meta run decides
    (and reports what does not fit, as the model would). Running it on meta tensors takes milliseconds a block."""
    from ._layout import _torchvision_swin

    swin = _torchvision_swin()
    if swin is None or node.target is not swin:
        return None
    names = ("input", "qkv_weight", "proj_weight", "relative_position_bias", "window_size", "num_heads", "shift_size",
             "attention_dropout", "dropout", "qkv_bias", "proj_bias", "logit_scale")
    arg = {k: _arg(node, i, k, None) for i, k in enumerate(names)}
    tensors = ("input", "qkv_weight", "proj_weight", "relative_position_bias")
    if not all(isinstance(arg[k], torch.fx.Node) and arg[k] in shapes for k in tensors):
        return None
    x, window, heads, shift = shapes[arg["input"]], arg["window_size"], arg["num_heads"], arg["shift_size"]
    if len(x) != 4 or type(heads) is not int or heads < 1 or not all(
            isinstance(v, (list, tuple)) and len(v) == 2 and all(type(n) is int and n >= least for n in v)
            for v, least in ((window, 1), (shift, 0))):
        return None
    c, n = x[3], window[0] * window[1]
    want = {"qkv_weight": (3 * c, c), "proj_weight": (c, c), "relative_position_bias": (1, heads, n, n),
            "qkv_bias": (3 * c,), "proj_bias": (c,), "logit_scale": (heads, 1, 1)}
    for k, size in want.items():
        v = arg[k]
        if not (v is None and k not in tensors or isinstance(v, torch.fx.Node) and shapes.get(v) == size):
            return None
    return x if c % heads == 0 else None


def _on_meta(model: nn.Module, node: torch.fx.Node, shapes: dict, values: dict, dtype) -> tuple[int, ...]:
    """The shape of a function kept whole, run on meta tensors of its operands' shapes (a parameter or buffer of its
    own dtype, any other tensor of the model's), as the meta pass would run it; one tensor out."""
    def meta(a):
        if not isinstance(a, torch.fx.Node):
            return a
        if a in values:
            return values[a]
        kind = operator.attrgetter(a.target)(model).dtype if a.op == "get_attr" else dtype
        return torch.empty(shapes[a], dtype=kind, device="meta")

    try:
        with torch.no_grad():
            out = node.target(*torch.fx.node.map_aggregate(node.args, meta),
                              **torch.fx.node.map_aggregate(node.kwargs, meta))
    except Exception as e:  # (an op without a meta kernel, a tensor made on the CPU: the meta pass decides)
        raise _Unknown(getattr(node.target, "__name__", "function")) from e
    if not isinstance(out, torch.Tensor) or out.dtype != dtype:
        raise _Unknown("a function kept whole that does not give one tensor of the model's type")
    return tuple(out.shape)


def _indexed(model: nn.Module, node: torch.fx.Node, shapes: dict, values: dict) -> tuple[int, ...]:
    """The shape of ``x[index]``: whole numbers, slices, None and ``...`` (ViT's ``x[:, 0]``; traced numbers among
    them, as Swin crops its padding with ``x[:, :H, :W]``), or with them one integer tensor that is a buffer or
    constant of the model (MaxViT's relative-position table read through an index table) in place of one axis."""
    x, index = _first(node, shapes), node.args[1] if len(node.args) == 2 else None
    items = [_index_item(v, values) for v in (index if type(index) is tuple else [index])]
    tensors = [i for i, v in enumerate(items) if isinstance(v, torch.fx.Node)]
    if len(tensors) > 1 or tensors and (items[tensors[0]].op != "get_attr" or any(type(v) is int for v in items)):
        raise _Unknown("index")  # (advanced indexing that may move axes, or a tensor of unknown type)
    if tensors and operator.attrgetter(items[tensors[0]].target)(model).dtype not in (torch.int64, torch.int32):
        raise _Unknown("index")
    used = sum(v is not None and v is not Ellipsis for v in items)
    if items.count(Ellipsis) > 1 or used > len(x):
        raise _Unknown("index")
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items[at:at + 1] = [slice(None)] * (len(x) - used)
    else:
        items += [slice(None)] * (len(x) - used)
    out, axis = [], 0
    for v in items:
        if v is None:
            out.append(1)
            continue
        n = x[axis]
        axis += 1
        if isinstance(v, torch.fx.Node):
            out.extend(shapes[v])
        elif type(v) is int:
            if not -n <= v < n:
                raise _Unknown("index")
        elif type(v) is slice and all(e is None or type(e) is int for e in (v.start, v.stop, v.step)) and \
                (v.step or 1) > 0:
            out.append(len(range(*v.indices(n))))
        else:
            raise _Unknown("index")
    return tuple(out)


def _numbers(v, values: dict):
    """A number, size or list of them (an op's argument) with the traced numbers in it replaced by their values."""
    if isinstance(v, torch.fx.Node):
        return values[v]
    return [values[e] if isinstance(e, torch.fx.Node) else e for e in v] if isinstance(v, (list, tuple)) else v


def _index_item(v, values: dict):
    """An index item with the traced whole numbers in it (an index, a slice's bounds) replaced by their values."""
    if isinstance(v, torch.fx.Node) and v in values:
        return values[v]
    if type(v) is slice and any(isinstance(e, torch.fx.Node) for e in (v.start, v.stop, v.step)):
        return slice(*(values[e] if isinstance(e, torch.fx.Node) else e for e in (v.start, v.stop, v.step)))
    return v


def _int(v) -> int:
    if type(v) is not int:
        raise _Unknown("a whole number")
    return v


def _chunks(x: tuple[int, ...], chunks: int, dim: int) -> list:
    """The shapes of ``torch.chunk(x, chunks, dim)``: parts of ⌈n / chunks⌉ along ``dim``, the last one smaller."""
    n = x[dim]
    if chunks < 1 or n < 1:
        raise _Unknown("chunk")
    step = -(-n // chunks)
    dim %= len(x)
    return [(*x[:dim], min(step, n - start), *x[dim + 1:]) for start in range(0, n, step)]


def _unbound(x: tuple[int, ...], dim: int) -> list:
    """The shapes of ``torch.unbind(x, dim)``: one per index along ``dim``, without that axis."""
    n = x[dim]  # (an axis past the end: IndexError, and the meta pass reports torch's error)
    dim %= len(x)
    return [(*x[:dim], *x[dim + 1:])] * n


def _split(x: tuple[int, ...], sizes, dim: int) -> list:
    """The shapes of ``torch.split(x, sizes, dim)``: parts of ``sizes`` along ``dim`` (the last one smaller), or of
    each of the listed sizes, which must add up to its length."""
    n, dim = x[dim], dim % len(x)
    if type(sizes) is int and sizes >= 1 and n >= 1:
        lengths = [min(sizes, n - start) for start in range(0, n, sizes)]
    elif isinstance(sizes, (list, tuple)) and all(type(v) is int and v >= 0 for v in sizes) and sum(sizes) == n:
        lengths = list(sizes)
    else:
        raise _Unknown("split")  # (torch's error, from the meta pass)
    return [(*x[:dim], length, *x[dim + 1:]) for length in lengths]


def reshaped(x: tuple[int, ...], sizes) -> tuple[int, ...]:
    """The shape ``view``/``reshape`` to ``sizes`` (whole numbers, at most one -1) gives ``x``; raises
    :class:`_Unknown` where torch refuses."""
    sizes = list(sizes)
    if any(type(v) is not int or v < -1 for v in sizes) or sizes.count(-1) > 1:
        raise _Unknown("view sizes")
    total, known = math.prod(x), math.prod(v for v in sizes if v != -1)
    if -1 in sizes:
        if known == 0 or total % known:
            raise _Unknown("view sizes")
        sizes[sizes.index(-1)] = total // known
    if math.prod(sizes) != total:
        raise _Unknown("view sizes")
    return tuple(sizes)


def expanded(x: tuple[int, ...], sizes) -> tuple[int, ...]:
    """The shape ``x.expand(*sizes)`` gives (new leading axes; -1 keeps an axis; an axis of length 1 may grow);
    raises :class:`_Unknown` where torch refuses."""
    sizes = list(sizes)
    lead = len(sizes) - len(x)
    if lead < 0 or any(type(v) is not int for v in sizes) or min(sizes[:lead], default=0) < 0:
        raise _Unknown("expand sizes")
    out = sizes[:lead]
    for n, v in zip(x, sizes[lead:]):
        if v != -1 and v != n and (n != 1 or v < 0):
            raise _Unknown("expand sizes")
        out.append(n if v == -1 else v)
    return tuple(out)


def reduced(x: tuple[int, ...], dims, keepdim) -> tuple[int, ...]:
    """The shape of a mean (sum, max) over the axes ``dims`` of ``x``, kept as length 1 with ``keepdim``."""
    if any(type(d) is not int for d in dims) or type(keepdim) is not bool or not dims:
        raise _Unknown("reduction")
    axes = {d % len(x) for d in dims}
    if len(axes) != len(dims) or any(not -len(x) <= d < len(x) for d in dims):
        raise _Unknown("reduction")
    return tuple(1 if i in axes else n for i, n in enumerate(x) if keepdim or i not in axes)


def _operands(node: torch.fx.Node, shapes: dict) -> list[tuple[int, ...]]:
    """Shapes of the tensor operands, in order; raises on a constant tensor or an unknown node."""
    found: list = []
    _visit(node.args, shapes, found)
    if node.kwargs:
        _visit(node.kwargs, shapes, found)
    return found


def arg_values(a):
    """The values in an fx node's arguments ``a`` (its args or kwargs), walked as torch.fx's ``map_aggregate``
    does: into tuples, lists, dict values and slices."""
    if isinstance(a, dict):
        a = a.values()
    elif isinstance(a, slice):
        a = (a.start, a.stop, a.step)
    for v in a:
        if isinstance(v, (tuple, list, dict, slice)):
            yield from arg_values(v)
        else:
            yield v


def _visit(a, shapes: dict, found: list) -> None:
    """Append the shapes of the fx nodes in ``a`` to ``found``; raises on a constant tensor."""
    for v in arg_values(a):
        if isinstance(v, torch.fx.Node):
            found.append(shapes[v])
        elif isinstance(v, torch.Tensor):
            raise _Unknown("constant tensor")


def _only(node: torch.fx.Node, shapes: dict) -> tuple[int, ...]:
    """The shape of the single tensor operand, which must come first."""
    args = node.args
    if len(args) == 1 and not node.kwargs and isinstance(args[0], torch.fx.Node):  # (the common call: layer(x))
        return shapes[args[0]]
    ops = _operands(node, shapes)
    if len(ops) != 1 or not isinstance(node.args[0], torch.fx.Node):
        raise _Unknown("operands")
    return ops[0]


def _arg(node: torch.fx.Node, i: int, name: str, default=None):
    """Argument ``i`` of a call, or its keyword ``name``, or ``default``."""
    return node.args[i] if len(node.args) > i else node.kwargs.get(name, default)


# ------------------------------------------------------------------ modules

_SAME_SHAPE_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid,
    nn.Mish, nn.ELU, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.BatchNorm1d, nn.BatchNorm2d,
)


def _attribute(model: nn.Module, target: str) -> tuple[int, ...]:
    value = operator.attrgetter(target)(model)
    if not isinstance(value, torch.Tensor) or value.dim() == 0:
        raise _Unknown("attribute")
    return tuple(value.shape)


def _module(m: nn.Module, node: torch.fx.Node, shapes: dict) -> tuple[int, ...]:
    x = _only(node, shapes)
    if type(m) is nn.LayerNorm and len(node.args) == 1 and not node.kwargs:
        return _layer_norm(x, m.normalized_shape)
    if type(m) in _SAME_SHAPE_MODULES and (len(node.args) != 1 or node.kwargs):
        raise _Unknown("arguments")
    if type(m) not in _SAME_SHAPE_MODULES and len(node.args) == 1 and not node.kwargs and \
            _trace._shape_preserving(m) and norm_fits(m, x):  # (timm's BatchNormAct2d: as the meta pass has it)
        return x
    return module_shape(m, x)


def module_shape(m: nn.Module, x: tuple[int, ...]) -> tuple[int, ...]:
    """The output shape of leaf layer ``m`` called on one input of shape ``x`` (batch axis included); raises
    :class:`_Unknown` for a layer (or an input) this pass does not derive."""
    cls = type(m)  # exact types: a subclass may pad, crop or reshape in its own forward
    if cls in _SAME_SHAPE_MODULES:
        if not norm_fits(m, x):
            raise _Unknown("norm input")  # (the meta pass runs it: torch reports the model's error)
        return x
    if cls in (nn.Conv1d, nn.Conv2d):
        return _conv(m, x)
    if cls in (nn.ConvTranspose1d, nn.ConvTranspose2d):
        return _transposed_conv(m, x)
    if _trace._timm_leaf(m) == "same":  # timm's TensorFlow 'same' padding: the windows follow the input's size
        if len(x) != 4 or isinstance(m, nn.Conv2d) and x[1] != m.in_channels:
            raise _Unknown("same input")
        axes = _trace._same_axes(m, x[2:])
        return (1, m.out_channels if isinstance(m, nn.Conv2d) else x[1], *(a.out_size(n) for a, n in zip(axes, x[2:])))
    if cls.__module__ == "timm.layers.std_conv" and cls.__name__ in ("StdConv2d", "ScaledStdConv2d"):
        return _conv(m, x)  # (weights standardised as they run: torch's geometry)
    if cls is nn.Upsample:
        return _resized(x, m.size, m.scale_factor, m.mode, m.align_corners)
    if cls in (nn.Softmax, nn.LogSoftmax):  # (over one axis; None, torch's old implicit axis: the meta pass)
        if type(m.dim) is not int or not -len(x) <= m.dim < len(x):
            raise _Unknown("softmax axis")
        return x
    if cls is nn.Linear or cls.__name__ == "Linear" and cls.__module__ == "timm.layers.linear":  # (timm's: F.linear)
        if x[-1] != m.in_features:
            raise _Unknown("features")
        return (*x[:-1], m.out_features)
    if cls in (nn.MaxPool1d, nn.MaxPool2d) and not m.return_indices:
        return _pool(x, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode, cls is nn.MaxPool2d)
    if cls in (nn.AvgPool1d, nn.AvgPool2d):
        return _pool(x, m.kernel_size, m.stride, m.padding, 1, m.ceil_mode, cls is nn.AvgPool2d)
    if cls in (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d) or (
            cls in (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d) and not m.return_indices):
        return _adaptive(x, m.output_size, cls in (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d))
    if cls is nn.Flatten:
        return _flatten(x, m.start_dim, m.end_dim)
    if cls is Pad:  # any width in every mode (edgewise's own padding layer)
        return _padded(x, m.pad)
    if cls in _TORCH_PADS:
        sides = [size for size in x[:1:-1] for _ in "lr"]  # F.pad order: last axis first, left then right
        if len(x) != len(m.padding) // 2 + 2 or cls not in _ZERO_PADS and any(
                p >= size for p, size in zip(m.padding, sides)):
            raise _Unknown("pad")  # e.g. torch refuses a reflection that wide: the meta pass reports its error
        return _padded(x, m.padding)
    if cls.__module__.startswith("edgewise.") and hasattr(m, "edgewise_op"):
        return _windowed(m, x)  # edgewise's remedy layers: a user's own edgewise_op is checked by the meta pass
    raise _Unknown(cls.__name__)


def norm_fits(m: nn.Module, x: tuple[int, ...]) -> bool:
    """Whether torch's normalisation layer ``m`` surely runs on an input of shape ``x`` (batch axis included),
    keeping its shape: its rank, and the channels or trailing axes its weights and statistics were made for.
    True for any other module; False where unsure (the caller then runs the layer, and torch decides). A subclass
    (timm's ``BatchNormAct2d``, a leaf the trace passes through) is held to its nearest torch base's rule."""
    rule = _NORM_RULES.get(type(m)) or _inherited_rule(type(m))
    return True if rule is None else rule(m, tuple(x))


@functools.lru_cache(maxsize=None)
def _inherited_rule(cls: type):
    """The rule of ``cls``'s nearest base class that has one (see :func:`norm_fits`), or None."""
    return next((_NORM_RULES[c] for c in cls.__mro__ if c in _NORM_RULES), None)


def _trailing(m: nn.Module, x: tuple) -> bool:
    shape = (m.normalized_shape,) if isinstance(m.normalized_shape, int) else tuple(m.normalized_shape)
    return 0 < len(shape) < len(x) and x[len(x) - len(shape):] == shape


def _channels(ranks: tuple, attr: str = "num_features"):
    def fits(m: nn.Module, x: tuple) -> bool:
        return len(x) in ranks and x[1] == getattr(m, attr)
    return fits


#: per normalisation class, what its forward checks of the input's shape (see :func:`norm_fits`)
_NORM_RULES = {nn.LayerNorm: _trailing, nn.RMSNorm: _trailing, nn.GroupNorm: _channels((3, 4, 5), "num_channels"),
               nn.BatchNorm1d: _channels((2, 3)), nn.BatchNorm2d: _channels((4,)), nn.SyncBatchNorm: _channels((3, 4)),
               nn.InstanceNorm1d: _channels((3,)), nn.InstanceNorm2d: _channels((4,))}


def _windowed(m: nn.Module, x: tuple[int, ...]) -> tuple[int, ...]:
    """A layer that states its windows (``edgewise_op``): edgewise's padded, partial and CoordConv
    layers (coordinate channels are weights of their own: ``in_channels`` counts the input's), random
    global connections drawn for this input size, and pools padded in a mode (channels kept)."""
    from ._axis import Flat, Window

    kind, ops = m.edgewise_op(len(x) - 2)
    conv = kind == "conv" and isinstance(m, (nn.Conv1d, nn.Conv2d))
    if not conv and kind != "pool" or conv and x[1] != m.in_channels:
        raise _Unknown("windowed layer")
    channels = m.out_channels if conv else x[1]
    if len(ops) == 1 and isinstance(ops[0], Flat) and tuple(ops[0].in_size) == x[2:]:
        return (1, channels, *ops[0].out_size)
    if len(x) != len(ops) + 2 or not all(isinstance(w, Window) for w in ops):
        raise _Unknown("windowed layer")
    return (1, channels, *(w.out_size(size) for w, size in zip(ops, x[2:])))


_ZERO_PADS = (nn.ZeroPad1d, nn.ZeroPad2d, nn.ConstantPad1d, nn.ConstantPad2d)
_TORCH_PADS = _ZERO_PADS + (nn.ReflectionPad1d, nn.ReflectionPad2d, nn.ReplicationPad1d, nn.ReplicationPad2d,
                            nn.CircularPad1d, nn.CircularPad2d)


def _padded(x: tuple[int, ...], pad, spatial: bool = True) -> tuple[int, ...]:
    """``x`` padded by ``pad`` in F.pad order (last axis first: left, right, top, bottom); ``spatial``: only the
    axes after the batch and channels may be padded."""
    pad = tuple(pad)
    if len(pad) % 2 or len(pad) // 2 > len(x) - (2 if spatial else 0):
        raise _Unknown("pad")
    out = list(x)
    for i in range(len(pad) // 2):
        out[-1 - i] += pad[2 * i] + pad[2 * i + 1]
    return tuple(out)


def _tuple(v, n: int) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def _conv(m: nn.Module, x: tuple[int, ...]) -> tuple[int, ...]:
    return conv_geometry(m, x)[1]


def conv_geometry(m: nn.Module, x: tuple[int, ...]) -> tuple[tuple, tuple[int, ...]]:
    """(the Windows of its spatial axes, the output shape) of torch's Conv1d/Conv2d ``m`` on an input of shape
    ``x`` (batch axis included); raises :class:`_Unknown`."""
    n = 2 if isinstance(m, nn.Conv2d) else 1
    if len(x) != n + 2 or x[1] != m.in_channels or (isinstance(m.padding, str) and any(s != 1 for s in m.stride)):
        raise _Unknown("conv input")
    axes = _trace._conv_axes(m, n)
    if m.padding_mode != "zeros" and any(max(a.pad) >= size for a, size in zip(axes, x[2:])):
        raise _Unknown("padding beyond the input")
    return axes, (1, m.out_channels, *(a.out_size(size) for a, size in zip(axes, x[2:])))


def _transposed_conv(m: nn.Module, x: tuple[int, ...]) -> tuple[int, ...]:
    """torch's ConvTranspose1d/2d ``m`` on an input of shape ``x`` called without ``output_size``: each length
    (n − 1)·stride − 2·padding + dilation·(kernel − 1) + output_padding + 1."""
    n = 2 if isinstance(m, nn.ConvTranspose2d) else 1
    if len(x) != n + 2 or x[1] != m.in_channels or m.padding_mode != "zeros" or isinstance(m.padding, str):
        raise _Unknown("transposed conv input")
    return (1, m.out_channels, *((size - 1) * s - 2 * p + d * (k - 1) + o + 1 for size, s, p, d, k, o in zip(
        x[2:], m.stride, m.padding, m.dilation, m.kernel_size, m.output_padding)))


def _pool(x, kernel, stride, padding, dilation, ceil_mode, two_d: bool) -> tuple[int, ...]:
    return pool_geometry(x, kernel, stride, padding, dilation, ceil_mode, two_d)[1]


#: pooling functions: whether 2-D, whether they take a dilation (F.max_pool*) before ceil_mode
POOL_FUNCTIONS = {F.max_pool1d: (False, True), F.max_pool2d: (True, True), F.avg_pool1d: (False, False),
                  F.avg_pool2d: (True, False)}


def pool_call_shape(fn, x: tuple, args: tuple, kwargs: dict) -> tuple[int, ...]:
    """The output shape of ``fn(*args, **kwargs)``, ``fn`` one of :data:`POOL_FUNCTIONS`, on an input of shape ``x``
    (one tensor out: no indices)."""
    two_d, dilated = POOL_FUNCTIONS[fn]

    def arg(i: int, name: str, default=None):
        return args[i] if len(args) > i else kwargs.get(name, default)

    if dilated and arg(6, "return_indices", False):
        raise _Unknown("pool indices")
    dilation = arg(4, "dilation", 1) if dilated else 1
    return _pool(x, arg(1, "kernel_size"), arg(2, "stride"), arg(3, "padding", 0), dilation,
                 arg(5 if dilated else 4, "ceil_mode", False), two_d)


def pool_geometry(x, kernel, stride, padding, dilation, ceil_mode, two_d: bool) -> tuple[tuple, tuple[int, ...]]:
    """(the Windows of its spatial axes, the output shape) of a max or average pool on an input of shape ``x``
    (batch axis included); raises :class:`_Unknown`."""
    n = 2 if two_d else 1
    if len(x) != n + 2:
        raise _Unknown("pool input")
    axes = _trace._pool_axes(kernel, stride, padding, dilation, ceil_mode, n)
    if any(2 * a.pad[0] > a.kernel for a in axes):  # PyTorch refuses padding beyond half the kernel
        raise _Unknown("pool padding")
    return axes, (*x[:2], *(a.out_size(size) for a, size in zip(axes, x[2:])))


def _adaptive(x, output_size, two_d: bool) -> tuple[int, ...]:
    n = 2 if two_d else 1
    if len(x) != n + 2:
        raise _Unknown("pool input")
    sizes = _tuple(output_size, n)
    return (*x[:2], *(size if o is None else int(o) for o, size in zip(sizes, x[2:])))


def _flatten(x, start: int, end: int) -> tuple[int, ...]:
    start, end = start % len(x), end % len(x)
    if start > end:
        raise _Unknown("flatten dims")
    merged = 1
    for d in x[start:end + 1]:
        merged *= d
    return (*x[:start], merged, *x[end + 1:])


# ------------------------------------------------------------------ functions and methods

_SAME_SHAPE_FUNCTIONS = {F.relu, F.relu6, F.gelu, F.silu, F.hardswish, F.sigmoid, F.tanh, F.dropout, torch.relu,
                         torch.sigmoid, torch.tanh, torch.exp, torch.sqrt, torch.rsqrt, torch.abs, torch.sin, torch.cos,
                         operator.neg, torch.neg}
_BROADCAST_FUNCTIONS = {operator.add, operator.iadd, operator.sub, operator.isub, operator.mul, operator.imul,
                        operator.truediv, operator.pow, torch.add, torch.sub, torch.mul, torch.div, torch.pow}
_BROADCAST_METHODS = {"add", "sub", "mul", "div", "pow"}
_IN_PLACE_METHODS = {"add_", "sub_", "mul_", "div_"}  # (broadcasting the other operand only)
_SAME_SHAPE_METHODS = {"relu", "relu_", "sigmoid", "sigmoid_", "tanh", "contiguous", "clone", "exp", "sqrt", "rsqrt",
                       "abs", "sin", "cos"}
#: reductions over given axes, as methods and as functions (``x.sum(1)``, ``torch.mean(x, dim=1)``)
_REDUCTION_METHODS = {"mean", "sum", "amax", "amin"}
_REDUCTION_FUNCTIONS = {torch.mean, torch.sum, torch.amax, torch.amin}


def _function(node: torch.fx.Node, shapes: dict) -> tuple[int, ...]:
    fn = node.target
    if fn in _SAME_SHAPE_FUNCTIONS:
        return _only(node, shapes)
    if fn in _BROADCAST_FUNCTIONS:
        ops = _operands(node, shapes)
        if not ops or len(node.args) != 2 or any(not isinstance(a, (torch.fx.Node, int, float)) for a in node.args):
            raise _Unknown("operands")
        out = _broadcast(ops)
        if fn in (operator.iadd, operator.isub, operator.imul) and out != ops[0]:
            raise _Unknown("in-place broadcast")
        return out
    if fn is torch.cat:
        return _cat(node, shapes)
    if fn is torch.einsum:
        return _einsum(node, shapes)
    if fn in (F.softmax, torch.softmax):
        return _softmax(node, shapes)
    if fn is torch.flatten:
        return _flatten(_only(node, shapes), _arg(node, 1, "start_dim", 0), _arg(node, 2, "end_dim", -1))
    if fn in (F.adaptive_avg_pool2d, F.adaptive_avg_pool1d):
        return _adaptive(_only(node, shapes), _arg(node, 1, "output_size", None), fn is F.adaptive_avg_pool2d)
    if fn in POOL_FUNCTIONS:
        if any(isinstance(v, torch.fx.Node) for v in arg_values((node.args[1:], node.kwargs))):
            raise _Unknown("pool arguments")
        return pool_call_shape(fn, _first(node, shapes), node.args, node.kwargs)
    if fn is F.scaled_dot_product_attention:
        return _attended(node, shapes)
    if fn is F.normalize:
        x, dim = _first(node, shapes), _arg(node, 2, "dim", 1)
        if type(dim) is not int or not -len(x) <= dim < len(x):
            raise _Unknown("normalize")
        return x
    if fn is torch.stack:
        return _stacked(node, shapes)
    if fn is F.linear:
        x, w, b = _first(node, shapes), _arg(node, 1, "weight", None), _arg(node, 2, "bias", None)
        w = shapes[w] if isinstance(w, torch.fx.Node) else None
        if w is None or len(w) != 2 or x[-1] != w[1] or len(node.args) + len(node.kwargs) > 3 or b is not None and (
                not isinstance(b, torch.fx.Node) or shapes[b] != w[:1]):
            raise _Unknown("linear")
        return (*x[:-1], w[0])
    if fn is torch.roll:  # (Swin's shifted windows; the shifts may be traced numbers)
        x, shifts, dims = _first(node, shapes), _arg(node, 1, "shifts", None), _arg(node, 2, "dims", None)
        shifts = shifts if isinstance(shifts, (tuple, list)) else [shifts]
        dims = [] if dims is None else dims if isinstance(dims, (tuple, list)) else [dims]
        if len(dims) != len(shifts) and not (not dims and len(shifts) == 1) or not all(
                type(d) is int and -len(x) <= d < len(x) for d in dims):
            raise _Unknown("roll")  # (torch's error, from the meta pass)
        return x
    if fn in (operator.matmul, torch.matmul):
        return _matmul(*_operands(node, shapes)) if len(node.args) == 2 and not node.kwargs else _fail("matmul")
    if fn is F.group_norm:
        x, groups = _first(node, shapes), _arg(node, 1, "num_groups", None)
        affine = [_arg(node, i, k, None) for i, k in ((2, "weight"), (3, "bias"))]
        if type(groups) is not int or groups < 1 or len(x) < 2 or x[1] % groups or any(
                v is not None and (not isinstance(v, torch.fx.Node) or shapes[v] != (x[1],)) for v in affine):
            raise _Unknown("group_norm")
        return x
    if fn is torch.permute:
        return _permuted(_first(node, shapes), node.args[1:], node.kwargs)
    if fn in (torch.transpose, torch.swapaxes, torch.swapdims):
        return _transposed(node, shapes)
    if fn in (torch.unsqueeze, torch.squeeze):
        return _squeezed(node, shapes)
    if fn is F.layer_norm:
        x, normalized = _first(node, shapes), _arg(node, 1, "normalized_shape", None)
        for i, k in ((2, "weight"), (3, "bias")):
            v = _arg(node, i, k, None)
            if v is not None and (not isinstance(v, torch.fx.Node) or shapes[v] != tuple(normalized)):
                raise _Unknown("layer_norm weights")
        if isinstance(_arg(node, 4, "eps", 1e-5), torch.fx.Node):
            raise _Unknown("layer_norm eps")
        return _layer_norm(x, normalized)
    if _trace._stochastic_depth(fn):  # (a function torch.fx keeps whole: the identity in eval mode)
        return _first(node, shapes)
    if fn in _REDUCTION_FUNCTIONS:
        return _reduction(node, shapes)
    if fn is torch.clamp:
        return _clamped(node, shapes)
    raise _Unknown(getattr(fn, "__name__", str(fn)))


def _reduction(node: torch.fx.Node, shapes: dict) -> tuple[int, ...]:
    """``x.mean/sum/amax/amin(dim, keepdim)`` or ``torch.mean(x, dim, keepdim)`` over given axes (no ``dtype``, no
    ``out``: the meta pass)."""
    if set(node.kwargs) - {"dim", "keepdim"} or len(node.args) > 3:
        raise _Unknown("reduction arguments")
    dims = _arg(node, 1, "dim", None)
    return reduced(_first(node, shapes), dims if isinstance(dims, (tuple, list)) else [dims],
                   _arg(node, 2, "keepdim", False))


def _clamped(node: torch.fx.Node, shapes: dict) -> tuple[int, ...]:
    """``clamp`` by numbers (or None): the input's shape; bounds that are tensors (broadcast, promote) are left to
    the meta pass."""
    bounds = [_arg(node, i, k, None) for i, k in ((1, "min"), (2, "max"))]
    if set(node.kwargs) - {"min", "max"} or len(node.args) > 3 or \
            any(v is not None and type(v) not in (int, float) for v in bounds) or all(v is None for v in bounds):
        raise _Unknown("clamp")
    return _first(node, shapes)


def _first(node: torch.fx.Node, shapes: dict) -> tuple[int, ...]:
    """The shape of the first argument, a traced tensor (the others are not looked at)."""
    x = node.args[0] if node.args else None
    if not isinstance(x, torch.fx.Node):
        raise _Unknown("operands")
    return shapes[x]


def _attention(m: nn.MultiheadAttention, node: torch.fx.Node, shapes: dict) -> list:
    """The shapes of ``nn.MultiheadAttention(q, k, v, need_weights=False)``'s output: [the attention's, None]."""
    args = list(node.args) + [None] * (8 - len(node.args))
    names = ("query", "key", "value", "key_padding_mask", "need_weights", "attn_mask", "average_attn_weights",
             "is_causal")
    if set(node.kwargs) - set(names) or len(node.args) > 8:
        raise _Unknown("attention arguments")
    q, k, v, padding, weights, mask, _, _ = [node.kwargs.get(n, a) for n, a in zip(names, args)]
    if weights is not False or padding is not None or mask is not None or \
            not all(isinstance(t, torch.fx.Node) for t in (q, k, v)):
        raise _Unknown("attention with weights or masks")
    q, k, v = shapes[q], shapes[k], shapes[v]
    batch = slice(0, 1) if m.batch_first else slice(1, 2)
    if not len(q) == len(k) == len(v) == 3 or (q[-1], k[-1], v[-1]) != (m.embed_dim, m.kdim, m.vdim) or \
            k[:-1] != v[:-1] or q[batch] != k[batch]:
        raise _Unknown("attention shapes")
    return [(*q[:-1], m.embed_dim), None]


def _recurrent(m: nn.RNNBase, node: torch.fx.Node, shapes: dict) -> list:
    """The shapes of an ``nn.LSTM``/``nn.GRU``/``nn.RNN`` run on a sequence alone: [its output's, its final state's]
    (an LSTM's final states are a pair, whose parts are left to the meta pass where they are read: None)."""
    if len(node.args) != 1 or node.kwargs or not isinstance(node.args[0], torch.fx.Node):
        raise _Unknown("a recurrent layer given its states")
    x = shapes[node.args[0]]
    if len(x) not in (2, 3) or x[-1] != m.input_size:
        raise _Unknown("recurrent input")  # (the layer's own error, from the meta pass)
    directions = 2 if m.bidirectional else 1
    out = (*x[:-1], (getattr(m, "proj_size", 0) or m.hidden_size) * directions)
    batch = () if len(x) == 2 else (x[0] if m.batch_first else x[1],)
    return [out, None if isinstance(m, nn.LSTM) else (directions * m.num_layers, *batch, m.hidden_size)]


def _fail(what: str):
    raise _Unknown(what)


#: interpolation modes and the numbers of spatial axes torch takes them for
_RESIZE_AXES = {"nearest": (1, 2, 3), "nearest-exact": (1, 2, 3), "area": (1, 2, 3), "linear": (1,), "bilinear": (2,),
                "bicubic": (2,), "trilinear": (3,)}


def _resized(x: tuple[int, ...], size, scale, mode, align_corners) -> tuple[int, ...]:
    """The shape ``F.interpolate(x, size, scale_factor, mode, align_corners)`` (or ``nn.Upsample``) gives: ``size``,
    or each axis times its factor, rounded down (as torch computes it, in double precision)."""
    n = len(x) - 2
    if n not in _RESIZE_AXES.get(mode, ()) or (size is None) == (scale is None) or (
            align_corners is not None and mode not in ("linear", "bilinear", "bicubic", "trilinear")):
        raise _Unknown("interpolate")  # (torch's error, from the meta pass)
    if size is not None:
        size = list(size) if isinstance(size, (list, tuple)) else [size] * n
        if len(size) != n or any(type(v) is not int or v < 1 for v in size):
            raise _Unknown("interpolate size")
        return (*x[:2], *size)
    scale = list(scale) if isinstance(scale, (list, tuple)) else [scale] * n
    if len(scale) != n or any(type(v) not in (int, float) or not v > 0 for v in scale):
        raise _Unknown("interpolate scale")
    return (*x[:2], *(math.floor(float(length) * float(f)) for length, f in zip(x[2:], scale)))


def _pad_call(x: tuple[int, ...], pad, mode) -> tuple[int, ...]:
    """The shape ``F.pad(x, pad, mode)`` gives, where torch surely pads (else :class:`_Unknown`: the meta pass reports
    torch's error): any whole widths of any axes for zeros, widths less than each spatial axis for the other modes."""
    if not isinstance(pad, (tuple, list)) or any(type(p) is not int for p in pad):
        raise _Unknown("pad widths")
    if mode != "constant":
        sides = [size for size in x[:1:-1] for _ in "lr"]  # (F.pad order: last axis first, left then right)
        if mode not in ("reflect", "replicate", "circular") or len(x) != len(pad) // 2 + 2 or any(
                not 0 <= p < size for p, size in zip(pad, sides)):
            raise _Unknown("pad")
    return _padded(x, pad, spatial=mode != "constant")


def _attended(node: torch.fx.Node, shapes: dict) -> tuple[int, ...]:
    """The shape of ``F.scaled_dot_product_attention(q, k, v, mask)`` on operands of one rank and equal leading axes,
    with a mask (if any) that broadcasts to the logits: the queries' with the values' features."""
    q, k, v, mask = (_arg(node, i, name, None) for i, name in enumerate(("query", "key", "value", "attn_mask")))
    if not all(isinstance(t, torch.fx.Node) for t in (q, k, v)) or node.kwargs.get("enable_gqa", False) or \
            len(node.args) > 7 or mask is not None and not isinstance(mask, torch.fx.Node):
        raise _Unknown("attention arguments")
    q, k, v = shapes[q], shapes[k], shapes[v]
    if not 2 <= len(q) == len(k) == len(v) or not q[:-2] == k[:-2] == v[:-2] or q[-1] != k[-1] or k[-2] != v[-2]:
        raise _Unknown("attention operands")
    logits = (*q[:-1], k[-2])
    if mask is not None and (len(shapes[mask]) > len(logits) or any(
            m not in (1, n) for m, n in zip(reversed(shapes[mask]), reversed(logits)))):
        raise _Unknown("attention mask")  # (one that does not broadcast to the logits: torch's error)
    return (*q[:-1], v[-1])


def _stacked(node: torch.fx.Node, shapes: dict) -> tuple[int, ...]:
    """The shape of ``torch.stack(tensors, dim)``: tensors of one shape, a new axis of their number at ``dim``."""
    parts, dim = _listed(node, shapes), _arg(node, 1, "dim", 0)
    x = parts[0]
    if any(p != x for p in parts) or type(dim) is not int or not -len(x) - 1 <= dim <= len(x):
        raise _Unknown("stack")
    dim %= len(x) + 1
    return (*x[:dim], len(parts), *x[dim:])


def _matmul(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of ``a @ b`` for operands of at least two axes (leading axes broadcast)."""
    if len(a) < 2 or len(b) < 2 or a[-1] != b[-2]:
        raise _Unknown("matmul operands")
    return (*_broadcast([a[:-2], b[:-2]]), a[-2], b[-1])


def _softmax(node: torch.fx.Node, shapes: dict) -> tuple[int, ...]:
    """The shape of a softmax over one axis (its input's; not a per-unit op: the Graph maps it otherwise)."""
    x, dim = _first(node, shapes), _arg(node, 1, "dim", None)
    extra = {k: v for k, v in node.kwargs.items() if k != "dim"}
    if type(dim) is not int or not -len(x) <= dim < len(x) or len(node.args) > 2 or \
            extra.pop("dtype", None) is not None or set(extra) - {"_stacklevel"}:
        raise _Unknown("softmax")
    return x


def _squeezed(node: torch.fx.Node, shapes: dict) -> tuple[int, ...]:
    """The shape of ``x.unsqueeze(dim)`` or ``x.squeeze(dim)`` (``x.squeeze()``: every axis of length 1, the batch
    axis too, as the meta pass's batch of one gives)."""
    x, dim = _first(node, shapes), _arg(node, 1, "dim", None)
    name = node.target if isinstance(node.target, str) else node.target.__name__
    if len(node.args) + len(node.kwargs) > 2 or set(node.kwargs) - {"dim"}:
        raise _Unknown(name)
    if name == "unsqueeze":
        if type(dim) is not int or not -len(x) - 1 <= dim <= len(x):
            raise _Unknown("unsqueeze")
        dim %= len(x) + 1
        return (*x[:dim], 1, *x[dim:])
    if dim is None:
        return tuple(n for n in x if n != 1)
    dims = dim if isinstance(dim, (tuple, list)) else [dim]
    if any(type(d) is not int or not -len(x) <= d < len(x) for d in dims):
        raise _Unknown("squeeze")
    drop = {d % len(x) for d in dims if x[d] == 1}
    return tuple(n for i, n in enumerate(x) if i not in drop)


def _permuted(x: tuple[int, ...], args: tuple, kwargs: dict) -> tuple[int, ...]:
    """``x.permute(*dims)``, ``x.permute(dims)`` or ``torch.permute(x, dims)``."""
    dims = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args if args else kwargs.get("dims")
    if kwargs and (args or set(kwargs) != {"dims"}) or not isinstance(dims, (tuple, list)) or \
            any(type(d) is not int for d in dims) or sorted(d % len(x) for d in dims) != list(range(len(x))) or \
            any(not -len(x) <= d < len(x) for d in dims):
        raise _Unknown("permute dims")
    return tuple(x[d] for d in dims)


def _transposed(node: torch.fx.Node, shapes: dict) -> tuple[int, ...]:
    """``x.transpose(dim0, dim1)``, ``torch.transpose(x, dim0, dim1)``, and ``swapaxes``/``swapdims`` alike."""
    x = list(_first(node, shapes))
    names = ("axis0", "axis1") if "swapaxes" in str(getattr(node.target, "__name__", node.target)) else ("dim0", "dim1")
    a, b = _int(_arg(node, 1, names[0], None)), _int(_arg(node, 2, names[1], None))
    x[a], x[b] = x[b], x[a]
    return tuple(x)


def _layer_norm(x: tuple[int, ...], normalized) -> tuple[int, ...]:
    """A layer norm over the trailing axes ``normalized`` keeps the shape (which must end with them)."""
    normalized = (normalized,) if isinstance(normalized, int) else tuple(normalized)
    if not normalized or any(type(v) is not int for v in normalized) or len(normalized) > len(x) or \
            tuple(x[len(x) - len(normalized):]) != normalized:
        raise _Unknown("layer_norm shape")
    return x


def _broadcast(ops: list) -> tuple[int, ...]:
    """``torch.broadcast_shapes`` (its error where they do not broadcast), without its cost for equal shapes."""
    first = ops[0]
    for o in ops:
        if o != first:
            return tuple(torch.broadcast_shapes(*ops))
    return first


def _cat(node: torch.fx.Node, shapes: dict) -> tuple[int, ...]:
    return cat_shape(_listed(node, shapes), _arg(node, 1, "dim", 0))


def _listed(node: torch.fx.Node, shapes: dict) -> list:
    """The shapes of the traced tensors listed as the first argument of ``torch.cat`` or ``torch.stack``."""
    tensors = _arg(node, 0, "tensors", None)
    if not isinstance(tensors, (list, tuple)) or not tensors or not all(isinstance(t, torch.fx.Node) for t in tensors):
        raise _Unknown("listed operands")
    return [shapes[t] for t in tensors]


def cat_shape(parts: list, dim: int) -> tuple[int, ...]:
    """The shape of ``torch.cat`` of tensors of shapes ``parts`` along ``dim``; raises :class:`_Unknown`."""
    first = parts[0]
    dim = dim % len(first)
    if len(set(map(len, parts))) != 1:
        raise _Unknown("cat shapes")
    axes = list(zip(*parts))  # (per axis, every part's size: a few tuples, not one per part)
    if any(i != dim and sizes.count(sizes[0]) != len(sizes) for i, sizes in enumerate(axes)):
        raise _Unknown("cat shapes")
    return (*first[:dim], sum(axes[dim]), *first[dim + 1:])


def _method(node: torch.fx.Node, shapes: dict) -> tuple[int, ...]:
    if node.target in _SAME_SHAPE_METHODS:
        if len(node.args) != 1 or node.kwargs:
            raise _Unknown("arguments")
        return _only(node, shapes)
    if node.target == "flatten":
        return _flatten(_only(node, shapes), _arg(node, 1, "start_dim", 0), _arg(node, 2, "end_dim", -1))
    if node.target == "permute":
        return _permuted(_first(node, shapes), node.args[1:], node.kwargs)
    if node.target in ("transpose", "swapaxes", "swapdims"):
        return _transposed(node, shapes)
    if node.target in ("unsqueeze", "squeeze"):
        return _squeezed(node, shapes)
    if node.target == "softmax":
        return _softmax(node, shapes)
    if node.target in _BROADCAST_METHODS | _IN_PLACE_METHODS and len(node.args) == 2 and not node.kwargs and \
            isinstance(node.args[1], (torch.fx.Node, int, float)):
        out = _broadcast(_operands(node, shapes))
        if node.target in _IN_PLACE_METHODS and out != _first(node, shapes):
            raise _Unknown("in-place broadcast")  # (torch's error, from the meta pass)
        return out
    if node.target in _REDUCTION_METHODS:
        return _reduction(node, shapes)
    if node.target == "clamp":
        return _clamped(node, shapes)
    if node.target == "reshape_as" and len(node.args) == 2 and not node.kwargs:
        x, other = _operands(node, shapes)
        if math.prod(x) != math.prod(other):
            raise _Unknown("reshape_as")  # (torch's error, from the meta pass)
        return other
    raise _Unknown(node.target)
