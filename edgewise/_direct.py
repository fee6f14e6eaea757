"""Graphs of plain CNNs recorded while their forward runs, without torch.fx.

A trace through torch.fx makes a proxy, an fx node and its name for every op, then shapes and a Graph
node from each: on a cold call that is most of the time (DenseNet-121: about 430 fx nodes). For models made
only of ops whose Graph node needs nothing but its operands' shapes, :func:`direct_graph` runs the forward once
on stand-ins (:class:`_Var`) that make each op's Graph node on the spot: the name, kind, windows, groups and
shape the torch.fx path gives it (node names through torch.fx's own naming rules, which decide a function
node's name). The ops: the layers in :data:`LAYERS` (BatchNorm with running statistics) and edgewise's remedy
layers, ``+`` and ``*`` (of a number or another traced tensor, broadcast), channel ``torch.cat``,
flattening or ``view``/``reshape`` to a vector (sizes may be ``x.size(d)``), functional max/average/adaptive
pooling, a mean, sum or maximum over every spatial axis, per-unit functions and methods, and torchvision's
stochastic depth (a function torch.fx keeps whole; the other such functions stop the direct trace).

Anything else stops it and :func:`direct_graph` returns None: another layer or function, a tensor that is not
traced (a parameter, a constant), arithmetic on a length, other attributes (``.shape``, ``.dim()``), Python
control flow on a traced value, a node the output does not depend on, optional forward arguments, a module
class with its own ``__getattr__`` or ``_call_impl``, timm's modules (their leaf functions). The caller then
traces with torch.fx, whose Graphs these equal (tested on zoo models, random nets and models that stop midway).
"""

from __future__ import annotations

import functools
import operator
from collections import namedtuple
from types import FunctionType

import torch
import torch.fx
import torch.fx._symbolic_trace as _st
import torch.nn as nn
import torch.nn.functional as F

from . import _trace
from ._fx_fast import _CALL_IMPL, LEAN_MODULES, LEAN_TRACE, _create_name, _module_classes, _target_name
from ._layout import _PLAIN_MODULES, _statistics_used
from ._pad import Pad
from ._axis import Adaptive
from ._shapes import _NORM_RULES, _SAME_SHAPE_FUNCTIONS, _SAME_SHAPE_METHODS, _SAME_SHAPE_MODULES, POOL_FUNCTIONS, \
    _adaptive, _broadcast, _flatten, _Unknown, arg_values, cat_shape, conv_geometry, module_shape, norm_fits, \
    pool_call_shape, pool_geometry, reduced, reshaped

__all__ = ["direct_graph"]

#: the leaf layers recorded directly (exact types: a subclass may do anything in its forward)
LAYERS = frozenset(_PLAIN_MODULES | {
    Pad, nn.Flatten, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.LeakyReLU, nn.ELU,
    nn.Mish, nn.ReLU6, nn.Dropout1d, nn.Dropout2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.ZeroPad1d,
    nn.ZeroPad2d, nn.ConstantPad1d, nn.ConstantPad2d, nn.ReflectionPad1d, nn.ReflectionPad2d, nn.ReplicationPad1d,
    nn.ReplicationPad2d, nn.CircularPad1d, nn.CircularPad2d})
_PER_UNIT = frozenset(_SAME_SHAPE_FUNCTIONS | {F.mish, F.hardsigmoid, F.leaky_relu, F.elu, F.hardtanh, F.softplus,
                                                F.selu, F.celu, F.relu_, torch.relu_})
_BINARY = frozenset({operator.add, operator.mul, torch.add, torch.mul})
_CATS = (torch.cat, torch.concat)
_FLATTENS = (torch.flatten, "flatten")
_ADAPTIVE = {F.adaptive_avg_pool1d: False, F.adaptive_avg_pool2d: True}
#: reductions that are a global pool when taken over every spatial axis
_REDUCTIONS = frozenset({torch.mean, "mean", torch.sum, "sum", torch.amax, "amax"})
_RESHAPES = frozenset({"view", "reshape", torch.reshape})
#: the tensor methods a stand-in records (besides ``size``)
_METHODS = frozenset(_SAME_SHAPE_METHODS | {"flatten", "mean", "sum", "amax", "view", "reshape"})
#: argument values an op may take beside traced tensors
_PLAIN = (int, float, bool, str, type(None), torch.dtype)
_Call = namedtuple("_Call", "op target args kwargs")  # what _trace._refine reads of an fx node


class _Fallback(BaseException):
    """An op the direct trace does not record (a BaseException: a model's ``except Exception`` cannot hide it)."""


class _Same(dict):
    """Graph node name -> itself (``_trace._refine`` looks operands up through such a map)."""

    def __missing__(self, key):
        return key


_SAME = _Same()


class _Var:
    """A traced tensor: its Graph node, its shape (batch axis included), the trace that records its ops."""

    __slots__ = ("_ew_node", "_ew_shape", "_ew_trace")  # (no tensor attribute has these names)
    __hash__ = object.__hash__

    def __init__(self, name: str, shape: tuple, trace: "_Direct"):
        self._ew_node, self._ew_shape, self._ew_trace = name, shape, trace

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in _CATS and args and type(args[0]) in (list, tuple) and args[0] and type(args[0][0]) is _Var:
            return args[0][0]._ew_trace.cat(func, args, kwargs or {})
        trace = next(v._ew_trace for v in arg_values((args, kwargs or {})) if type(v) is _Var)
        if _tensor_method(func):
            raise _Fallback  # (a tensor method called on a plain tensor with a traced argument)
        return trace.function(func, args, kwargs or {}, func.__name__)

    def __add__(self, other):
        return self._ew_trace.function(operator.add, (self, other), {})

    def __radd__(self, other):
        return self._ew_trace.function(operator.add, (other, self), {})

    def __mul__(self, other):
        return self._ew_trace.function(operator.mul, (self, other), {})

    def __rmul__(self, other):
        return self._ew_trace.function(operator.mul, (other, self), {})

    def __getattr__(self, name: str):
        if name in _METHODS:
            return functools.partial(self._ew_trace.method, name, self)
        if name == "size":
            return functools.partial(self._ew_trace.size, self)
        raise _Fallback  # (torch.fx would record an attribute: .shape, .dim, ...)


class _Size:
    """``x.size(d)`` of a traced tensor: a length that only a reshape may take (torch.fx records arithmetic on it
    as nodes, whose names later nodes' names depend on; a stand-in takes part in none)."""

    __slots__ = ("_ew_value",)

    def __init__(self, value: int):
        self._ew_value = value


def _tensor_method(func) -> bool:
    """``torch.overrides.is_tensor_method_or_property(func)``, kept per function (it takes microseconds)."""
    hit = _TENSOR_METHODS.get(func)
    if hit is None:
        hit = _TENSOR_METHODS[func] = torch.overrides.is_tensor_method_or_property(func)
    return hit


_TENSOR_METHODS: dict = {}


def _refuse(*args, **kwargs):
    raise _Fallback


for _name in ("bool", "len", "iter", "contains", "getitem", "setitem", "delitem", "call", "float", "int", "index",
              "complex", "abs", "neg", "pos", "invert", "eq", "ne", "lt", "le", "gt", "ge", "sub", "rsub", "truediv",
              "rtruediv", "floordiv", "rfloordiv", "mod", "rmod", "pow", "rpow", "matmul", "rmatmul", "and", "rand",
              "or", "ror", "xor", "rxor", "lshift", "rlshift", "rshift", "rrshift", "divmod", "rdivmod", "round",
              "trunc", "floor", "ceil", "reversed", "enter", "exit", "copy", "deepcopy", "reduce", "reduce_ex"):
    setattr(_Var, f"__{_name}__", _refuse)
    setattr(_Size, f"__{_name}__", _refuse)
_Size.__hash__ = object.__hash__


def direct_graph(model: nn.Module, shape: tuple[int, ...], named: dict, leaf) -> tuple | None:
    """``(nodes, output)`` of ``model``'s Graph on an input of ``shape`` (no batch axis), recorded while its
    forward runs (in eval mode, set by the caller), or None where the model leaves the ops recorded here.
    ``named``: ``dict(model.named_modules())``; ``leaf(module, path)``: torch.fx's leaf rule."""
    if not _eligible(model, named):
        return None
    trace = _Direct(named, leaf)
    code = type(model).forward.__code__
    patches = [(d, k, _refusing(d[k])) for (_, k), d in _st._wrapped_fns_to_patch.items() if k in d]
    patches += [(vars(torch), f.__name__, _recording_cat(f, trace)) for f in _CATS]
    saved = [(d, k, d[k]) for d, k, _ in patches]
    was_tracing = _st._get_is_fx_tracing()
    _st._set_is_fx_tracing(True)
    nn.Module._call_impl = trace.call_impl()  # (not __call__: setting a special method on nn.Module updates the
    # call slot of its ~600 subclasses, 0.17 ms each way)
    try:
        for d, k, v in patches:
            d[k] = v
        out = model.forward(trace.input(code.co_varnames[1], shape))
    except (Exception, _Fallback):
        return None
    finally:
        nn.Module._call_impl = _CALL_IMPL
        for d, k, v in saved:
            d[k] = v
        _st._set_is_fx_tracing(was_tracing)
    if type(out) is not _Var or not _all_read(trace.nodes, out._ew_node):
        return None  # (a node the output does not read: the torch.fx path skips it, names and all)
    return trace.nodes, out._ew_node


def _all_read(nodes: dict, output: str) -> bool:
    """Whether ``output`` depends on every node (the input aside) of ``nodes``, which are in the order they ran:
    ``_trace._prune`` would keep them all."""
    needed = {output}
    for name, node in reversed(nodes.items()):
        if name not in needed and name != "input":
            return False
        needed.update(node.inputs)
    return True


def _eligible(model: nn.Module, named: dict) -> bool:
    """A model whose forward takes one tensor and whose modules route calls as ``nn.Module`` does."""
    fn = getattr(type(model), "forward", None)
    if not (LEAN_MODULES and LEAN_TRACE) or not isinstance(fn, FunctionType) or "forward" in model.__dict__:
        return False
    code = fn.__code__
    if code.co_argcount != 2 or code.co_kwonlyargcount or code.co_flags & 0x0C:  # (*args, **kwargs)
        return False
    classes = _module_classes(named.values())
    return classes is not None and not any(c.__module__.startswith("timm.") for c in classes)


def _remedy(m: nn.Module) -> bool:
    """An edgewise layer that states its windows (``edgewise_op``: padded, partial, CoordConv, global
    convolutions; pools padded in a mode)."""
    return type(m).__module__.startswith("edgewise.") and callable(getattr(m, "edgewise_op", None))


def _recording_cat(cat, trace: "_Direct"):
    """``torch.cat`` (or ``concat``) that records a list of traced tensors at once: the same as through
    ``_Var.__torch_function__``, without torch's dispatch, which inspects every tensor of the list (DenseNet's
    concatenations read up to 32)."""

    @functools.wraps(cat)
    def recording(*args, **kwargs):
        if args and type(args[0]) in (list, tuple) and args[0] and type(args[0][0]) is _Var:
            return trace.cat(cat, args, kwargs)
        return cat(*args, **kwargs)

    return recording


@functools.lru_cache(maxsize=None)
def _refusing(fn):
    """``fn`` (a function registered with ``torch.fx.wrap``, which torch.fx keeps whole) for a direct trace: given a
    traced tensor, torchvision's stochastic depth is recorded (the identity), any other refused."""

    @functools.wraps(fn)
    def guard(*args, **kwargs):
        for v in arg_values((args, kwargs)):
            if type(v) is _Var:
                if not _trace._stochastic_depth(fn):
                    raise _Fallback
                return v._ew_trace.function(fn, args, kwargs)
        return fn(*args, **kwargs)

    return guard


class _Direct:
    """One direct trace: the Graph nodes so far and torch.fx's naming state."""

    def __init__(self, named: dict, leaf):
        self.paths = {m: k for k, m in named.items()}  # (a module under two names: the last, as torch.fx keeps)
        self.leaf = leaf
        self.nodes: dict = {}
        self.calls: dict[str, int] = {}
        self.fx = torch.fx.Graph()  # (only its namespace: the names torch.fx would give the nodes)
        self.later: dict[str, list] = {}  # layer paths not yet named in it, by their name's first word

    def _fx_name(self, candidate) -> str:
        name = _target_name(self.fx, candidate)
        if self.later:
            head = _head(name)
            for path in self.later.pop(head, ()) if head is not None else self._all_later():
                _create_name(self.fx._graph_namespace, _target_name(self.fx, path))
        return _create_name(self.fx._graph_namespace, name)

    def _layer_name(self, path: str) -> None:
        """Name layer ``path`` in torch.fx's namespace as its ``call_module`` node, once a later name could depend on
        it. A name depends on earlier ones only through those of the same base (the name less a trailing
        ``_<digits>``), which begin with the same first word; the layers' own fx names are never used."""
        head = _head(path.partition(".")[0])
        if head is None:
            self._fx_name(path)
        else:
            self.later.setdefault(head, []).append(path)

    def _all_later(self) -> list:
        paths = [p for ps in self.later.values() for p in ps]  # (bases differ between lists: any order of lists)
        self.later.clear()
        return paths

    def input(self, arg: str, shape: tuple) -> _Var:
        self._fx_name(arg)
        self.nodes["input"] = _trace._node("input", "input", (), shape, (), 1, "input", ())
        return _Var("input", (1, *shape), self)

    # ------------------------------------------------------------------ layers
    def call_impl(self):
        """``nn.Module._call_impl`` during the trace: a leaf layer is recorded, any other module runs."""
        paths, leaf, layer = self.paths, self.leaf, self.layer

        def call(mod: nn.Module, *args, **kwargs):
            path = paths.get(mod)
            if path is None:
                raise _Fallback  # (a module made in forward: torch.fx names it by a search)
            if type(mod) in LAYERS or _remedy(mod):
                return layer(mod, path, args, kwargs)
            if leaf(mod, path):
                raise _Fallback
            return _CALL_IMPL(mod, *args, **kwargs)

        return call

    def layer(self, m: nn.Module, path: str, args: tuple, kwargs: dict) -> _Var:
        if kwargs or len(args) != 1 or type(args[0]) is not _Var or _statistics_used(m):
            raise _Fallback
        x = args[0]
        self._layer_name(path)
        k = self.calls[path] = self.calls.get(path, 0) + 1
        name = path if k == 1 else f"{path}#{k - 1}"
        rule = _RULES.get(type(m))
        try:
            if rule is not None and "edgewise_op" not in m.__dict__:  # (the common layers: one step)
                kind, axes, out, groups = rule(m, x._ew_shape)
                return self._add(name, kind, (x._ew_node,), out, axes, groups, type(m).__name__)
            out = module_shape(m, x._ew_shape)
        except _Unknown:
            raise _Fallback from None
        in_shape = self.nodes[x._ew_node].shape
        kind, axes = _trace._module_op(m, len(in_shape) - 1, in_shape)
        fx = _Call("call_module", path, (x._ew_node,), {})
        kind, axes, srcs = _trace._refine(kind, axes, fx, [x._ew_node], self.nodes, _SAME, out[1:], name)
        return self._add(name, kind, srcs, out, axes, _trace._attr(m, "groups", 1), type(m).__name__)

    # ------------------------------------------------------------------ functions and methods
    def method(self, name: str, x: _Var, *args, **kwargs) -> _Var:
        return self.function(name, (x, *args), kwargs)

    def function(self, target, args: tuple, kwargs: dict, fx_name=None) -> _Var:
        """Record a call of ``target`` (a function, or a method's name) as torch.fx's node ``fx_name`` would be."""
        srcs = []
        for v in arg_values((args, kwargs)):
            if type(v) is _Var:
                srcs.append(v)
            elif not isinstance(v, _PLAIN) and (type(v) is not _Size or target not in _RESHAPES):
                raise _Fallback  # a tensor that is not traced (a parameter, a constant), a module, ...
        out = self._shape(target, args, kwargs, srcs)
        name = self._fx_name(target if fx_name is None else fx_name)
        in_shape = self.nodes[srcs[0]._ew_node].shape
        plain = tuple([v._ew_node if type(v) is _Var else v for v in args])
        kind, axes = _trace._function_op(target, plain, kwargs, len(in_shape) - 1)
        fx = _Call("call_method" if isinstance(target, str) else "call_function", target, plain, kwargs)
        names = [v._ew_node for v in srcs]
        kind, axes, inputs = _trace._refine(kind, axes, fx, names, self.nodes, _SAME, out[1:], name)
        op = _trace._qualname(target)
        return self._add(name, kind, inputs, out, axes, 1, op)

    def cat(self, func, args: tuple, kwargs: dict) -> _Var:
        """``torch.cat`` of a list of traced tensors: along the channels a Graph node in one step, else
        :meth:`function` decides."""
        parts, dim = args[0], args[1] if len(args) > 1 else kwargs.get("dim", 0)
        if len(args) > 2 or (kwargs and list(kwargs) != ["dim"]) or type(dim) is not int or \
                any(type(v) is not _Var for v in parts):
            return self.function(func, args, kwargs, func.__name__)
        try:
            out = cat_shape([v._ew_shape for v in parts], dim)
        except _Unknown:
            raise _Fallback from None
        if dim % len(out) != 1:
            raise _Fallback  # (another dim: a data movement, not a cat node)
        name = self._fx_name(func.__name__)
        return self._add(name, "cat", [v._ew_node for v in parts], out, (), 1, _trace._qualname(func))

    def _shape(self, target, args: tuple, kwargs: dict, srcs: list) -> tuple:
        """The output shape (batch axis included) of an op this trace records; raises :class:`_Fallback`."""
        first = args[0] if args else None
        try:
            if target in _BINARY and not kwargs and len(args) == 2 and srcs and \
                    all(type(a) is _Var or type(a) in (int, float) for a in args):
                return _broadcast([v._ew_shape for v in srcs])
            if type(first) is not _Var:
                if target in _CATS and type(first) in (list, tuple) and first and \
                        all(type(v) is _Var for v in first) and len(srcs) == len(first):
                    dim = _arg(args, kwargs, 1, "dim", 0)
                    out = cat_shape([v._ew_shape for v in first], dim)
                    if type(dim) is int and dim % len(out) == 1:  # (another dim: a data movement, not a cat node)
                        return out
                raise _Fallback
            if len(srcs) != 1:
                raise _Fallback
            if target in _PER_UNIT or _trace._stochastic_depth(target) or (
                    target in _SAME_SHAPE_METHODS and len(args) == 1 and not kwargs):
                return first._ew_shape
            if target in _FLATTENS:
                return _kept(first._ew_shape, _flatten(first._ew_shape, _arg(args, kwargs, 1, "start_dim", 0),
                                                       _arg(args, kwargs, 2, "end_dim", -1)))
            if target in _ADAPTIVE:
                return _adaptive(first._ew_shape, _arg(args, kwargs, 1, "output_size"), _ADAPTIVE[target])
            if target in POOL_FUNCTIONS:
                return pool_call_shape(target, first._ew_shape, args, kwargs)
            if target in _REDUCTIONS:
                return _reduced(first._ew_shape, args, kwargs)
            if target in _RESHAPES:
                return _kept(first._ew_shape, _reshaped(first._ew_shape, args, kwargs))
        except (_Unknown, TypeError, ValueError, IndexError, RuntimeError):
            pass
        raise _Fallback

    def size(self, x: _Var, *args, **kwargs) -> _Size:
        """``x.size(d)``: torch.fx's node ``size`` (no Graph node: shape arithmetic)."""
        if kwargs or len(args) != 1 or type(args[0]) is not int:
            raise _Fallback
        self._fx_name("size")
        return _Size(x._ew_shape[args[0]])

    def _add(self, name: str, kind: str, inputs, out: tuple, axes, groups: int, op: str) -> _Var:
        """Add a Graph node as the torch.fx path's ``_build`` names it (a taken name gets ``#2``, ...)."""
        if len(out) < 2 or out[0] != 1 or min(out) < 1:
            raise _Fallback  # (the batch axis moved, or nothing is left: the torch.fx path reports the model's error)
        base, k = name, 1
        while name in self.nodes:
            k += 1
            name = f"{base}#{k}" if "#" not in base else f"{base}.{k}"
        self.nodes[name] = _trace._node(name, kind, tuple(inputs), out[1:], tuple(axes), int(groups), op, ())
        return _Var(name, out, self)


def _head(name: str) -> str | None:
    """The first word (up to ``_``) of the fx node name torch.fx makes of ``name`` (a lower-case ASCII identifier,
    or a layer path's first part: dots become ``_``), or None where the name is not that simple."""
    if name.isascii() and name.isidentifier() and name.lower() == name:
        return name.partition("_")[0]
    return None


def _per_unit(m: nn.Module, x: tuple) -> tuple:
    return "identity", (), x, 1


def _norm(m: nn.Module, x: tuple) -> tuple:
    if not norm_fits(m, x):
        raise _Fallback  # (torch's error, through the torch.fx path)
    return "identity", (), x, 1


def _conv(m: nn.Module, x: tuple) -> tuple:
    axes, out = conv_geometry(m, x)
    return "conv", axes, out, m.groups


def _pooling(m: nn.Module, x: tuple) -> tuple:
    cls = type(m)
    if cls in (nn.MaxPool1d, nn.MaxPool2d) and m.return_indices:
        raise _Fallback
    dilation = m.dilation if cls in (nn.MaxPool1d, nn.MaxPool2d) else 1
    axes, out = pool_geometry(x, m.kernel_size, m.stride, m.padding, dilation, m.ceil_mode,
                              cls in (nn.MaxPool2d, nn.AvgPool2d))
    return "pool", axes, out, 1


def _adaptive_pool(m: nn.Module, x: tuple) -> tuple:
    if getattr(m, "return_indices", False):
        raise _Fallback
    out = _adaptive(x, m.output_size, type(m) in (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d))
    return "pool", (Adaptive(),) * (len(x) - 2), out, 1


def _linear(m: nn.Module, x: tuple) -> tuple:
    if len(x) != 2 or x[1] != m.in_features:
        raise _Fallback  # (the torch.fx path reports a Linear on a feature map)
    return "linear", (), (1, m.out_features), 1


#: the common layers' (kind, axes, output shape, groups) in one step: what ``module_shape``, ``_trace._module_op``
#: and ``_trace._refine`` give them together (each computes the windows again)
_RULES = {**{cls: _norm if cls in _NORM_RULES else _per_unit for cls in _SAME_SHAPE_MODULES},
          nn.Conv1d: _conv, nn.Conv2d: _conv,
          **{cls: _pooling for cls in (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)},
          **{cls: _adaptive_pool for cls in (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d,
                                            nn.AdaptiveMaxPool2d)}, nn.Linear: _linear}


def _arg(args: tuple, kwargs: dict, i: int, name: str, default=None):
    return args[i] if len(args) > i else kwargs.get(name, default)


def _kept(x: tuple, out: tuple) -> tuple:
    """``out``, the shape a flatten or reshape gives ``x``, where the Graph keeps it as a reshape node: to a vector
    or keeping the spatial axes (anything else moves units, which the torch.fx path follows: ``Layout._new_move``)."""
    if len(out) == 2 or (len(out) == len(x) and out[2:] == x[2:]):
        return out
    raise _Fallback


def _reduced(x: tuple, args: tuple, kwargs: dict) -> tuple:
    """The output shape of a mean / sum / amax over every spatial axis of ``x`` (else :class:`_Fallback`)."""
    dims = _arg(args, kwargs, 1, "dim")
    dims = dims if isinstance(dims, (tuple, list)) else [dims]
    if len(x) < 3 or sorted(d % len(x) for d in dims) != list(range(2, len(x))):
        raise _Fallback  # (another reduction: the torch.fx path follows it unit by unit)
    return reduced(x, dims, _arg(args, kwargs, 2, "keepdim", False))


def _reshaped(x: tuple, args: tuple, kwargs: dict) -> tuple:
    """The shape ``x.view(...)`` / ``x.reshape(...)`` / ``torch.reshape(x, ...)`` gives (sizes may be ``_Size``)."""
    sizes = args[1:] if len(args) > 1 else (kwargs.get("shape", kwargs.get("size")),)
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    return reshaped(x, [v._ew_value if type(v) is _Size else v for v in sizes])
