"""torch.fx machinery that turns an ``nn.Module`` into an edgewise :class:`Graph`."""

from __future__ import annotations

import dataclasses

import math
import operator
import sys
from collections import OrderedDict
from types import SimpleNamespace
from typing import Callable, Sequence

import torch
import torch.fx
import torch.fx.experimental.meta_tracer
import torch.nn as nn
import torch.nn.functional as F

from . import _meta
from ._axis import Adaptive, Flat, Resample, Window
from ._direct import direct_graph
from ._fingerprint import LRU, GraphCache, _named_modules, fingerprint
from ._fx_fast import FastTracer
from ._layout import Layout
from ._pad import Pad
from ._shapes import arg_values, infer_shapes, norm_fits
from ._stats import check_norm_stats
from .errors import EdgewiseError
from .graph import Graph, Node

__all__ = ["trace", "parse_shape"]


def parse_shape(shape: str | Sequence[int]) -> tuple[int, ...]:
    """``"3x224x224"`` or ``(3, 224, 224)`` → ``(3, 224, 224)``; checked to be C×L or C×H×W."""
    if isinstance(shape, str):
        try:
            dims = tuple(int(p) for p in shape.lower().replace("×", "x").split("x"))
        except ValueError:
            raise EdgewiseError(f"input shape {shape!r} is not of the form CxL or CxHxW (e.g. 3x224x224)") from None
    else:
        dims = tuple(int(d) for d in shape)
    if len(dims) not in (2, 3) or min(dims) < 1:
        raise EdgewiseError(
            f"input shape {shape!r} must be C×L (1-D) or C×H×W (2-D) with positive sizes, without the batch axis"
        )
    return dims


# --------------------------------------------------------------------------- ops

_IDENTITY_MODULES = (
    nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout,
    nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d,
    nn.LayerNorm, nn.SyncBatchNorm, nn.RMSNorm,
)
_NOT_ELEMENTWISE = (nn.Softmax, nn.Softmin, nn.LogSoftmax, nn.Softmax2d, nn.MultiheadAttention, nn.GLU)

_IDENTITY_FUNCTIONS = {
    F.relu, F.relu6, F.gelu, F.silu, F.mish, F.hardswish, F.hardsigmoid, F.hardtanh, F.leaky_relu,
    F.elu, F.selu, F.celu, F.softplus, F.sigmoid, F.tanh, F.dropout, F.dropout1d, F.dropout2d,
    F.batch_norm, F.layer_norm, F.group_norm, F.instance_norm, F.normalize, F.rms_norm,
    torch.relu, torch.relu_, torch.sigmoid, torch.tanh, torch.clone, torch.abs, torch.exp,
    torch.neg, torch.clamp, torch.clip, operator.neg, operator.pos, torch.nn.functional.relu_, torch.square,
}
_IDENTITY_METHODS = {
    "relu", "relu_", "sigmoid", "sigmoid_", "tanh", "clone", "contiguous", "float", "double", "to",
    "detach", "abs", "neg", "clamp", "clamp_", "clip", "exp", "type_as", "half", "bfloat16", "gelu", "softplus",
    "square", "square_",
}
_ADD = {operator.add, operator.iadd, operator.sub, operator.isub, torch.add, torch.sub}
_MUL = {operator.mul, operator.imul, operator.truediv, operator.itruediv, torch.mul, torch.div}
_ADD_METHODS = {"add", "add_", "sub", "sub_"}
_MUL_METHODS = {"mul", "mul_", "div", "div_"}
_RESHAPE_FUNCTIONS = {torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze}
_RESHAPE_METHODS = {"view", "reshape", "flatten", "squeeze", "unsqueeze"}



def _is_identity_function(fn) -> bool:
    return fn in _IDENTITY_FUNCTIONS or _stochastic_depth(fn)


def _stochastic_depth(fn) -> bool:
    """Whether ``fn`` is torchvision's stochastic depth, an fx leaf function (a model using it has imported
    torchvision: importing it here would cost every edgewise import a second)."""
    ops = sys.modules.get("torchvision.ops")
    return ops is not None and fn is getattr(ops, "stochastic_depth", None)


def _pair(v, n: int) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def _conv_axes(m: nn.Module, n: int) -> tuple[Window, ...]:
    """The Windows of a convolution's spatial axes (kept per hyper-parameters: Windows are immutable)."""
    d = m.__dict__
    key = (n, d.get("kernel_size"), d.get("stride"), d.get("dilation"), d.get("padding"), d.get("padding_mode"))
    if not _exact(key):
        return _new_conv_axes(m, n)
    hit = _CONV_AXES.get(key)
    if hit is None:
        if len(_CONV_AXES) >= 4096:
            _CONV_AXES.clear()
        hit = _CONV_AXES[key] = _new_conv_axes(m, n)
    return hit


def _exact(key: tuple) -> bool:
    """Whether ``key`` holds only ints, strings and tuples of ints: values equal exactly when the Windows are."""
    for v in key:
        t = type(v)
        if t is tuple:
            for i in v:
                if type(i) is not int:
                    return False
        elif t is not int and t is not str:
            return False
    return True


_CONV_AXES: dict = {}  # (n, kernel, stride, dilation, padding, mode) -> Windows


def _new_conv_axes(m: nn.Module, n: int) -> tuple[Window, ...]:
    k, s, d = _pair(m.kernel_size, n), _pair(m.stride, n), _pair(m.dilation, n)
    mode = m.padding_mode
    if isinstance(m.padding, str):
        if m.padding == "valid":
            pads = [(0, 0)] * n
        else:  # 'same': PyTorch puts the odd extra padding at the end
            pads = [((di * (ki - 1)) // 2, di * (ki - 1) - (di * (ki - 1)) // 2) for ki, di in zip(k, d)]
    else:
        pads = [(p, p) for p in _pair(m.padding, n)]
    return tuple(Window(k[a], s[a], d[a], pads[a], mode) for a in range(n))


def _pool_axes(kernel, stride, padding, dilation, ceil_mode, n) -> tuple[Window, ...]:
    k = _pair(kernel, n)
    s = _pair(stride if stride not in (None, ()) else kernel, n)
    p, d = _pair(padding, n), _pair(dilation, n)
    return tuple(Window(k[a], s[a], d[a], (p[a], p[a]), "zeros", bool(ceil_mode)) for a in range(n))


def _pad_axes(pad: Sequence[int], mode: str, n: int) -> tuple[Window, ...]:
    """F.pad's pad list runs from the last axis backwards: (left, right, top, bottom)."""
    pad = list(pad) + [0] * (2 * n - len(pad))
    if min(pad) < 0:
        raise EdgewiseError(f"negative padding {tuple(pad)} (cropping) is not supported")
    mode = {"constant": "zeros", "zeros": "zeros", "reflect": "reflect", "replicate": "replicate",
            "circular": "circular", "symmetric": "symmetric"}[mode]
    return tuple(Window(1, 1, 1, (pad[2 * (n - 1 - a)], pad[2 * (n - 1 - a) + 1]), mode) for a in range(n))


def _resample_axes(mode, align_corners, scale_factor, n, recompute=False) -> tuple[Resample, ...]:
    """With ``recompute`` (or a size), PyTorch maps positions by n_in/n_out, else by 1/scale_factor."""
    scales = _pair(scale_factor, n) if scale_factor is not None and not recompute else (None,) * n
    return tuple(Resample(mode, bool(align_corners), 1 / sc if sc else None) for sc in scales)


def _own_op(m: nn.Module):
    """``m.edgewise_op`` or None."""
    return _attr(m, "edgewise_op", None)


def _attr(m, k: str, default):
    """``getattr(m, k, default)``, without the AttributeError ``nn.Module.__getattr__`` builds for a module
    that has no ``k`` (nor the one ``hasattr`` builds for a class of torch's own layers found not to have it)."""
    d = getattr(m, "__dict__", None)
    if d is None or k in d or k in d.get("_modules", ()) or k in d.get("_parameters", ()) or \
            k in d.get("_buffers", ()):
        return getattr(m, k, default)
    cls = type(m)
    if (cls, k) in _ABSENT:
        return default
    if hasattr(cls, k):
        return getattr(m, k, default)
    if cls.__module__.startswith("torch.nn.modules.") and len(_ABSENT) < 4096:
        _ABSENT.add((cls, k))
    return default


#: (class of torch's own layers, attribute name) pairs the class was found not to have
_ABSENT: set = set()


def _module_op(m: nn.Module, n: int, in_shape: Sequence[int] | None = None) -> tuple[str, tuple]:
    """(kind, axes) for a leaf module, or raise; ``in_shape`` (C, *spatial) for layers that pad by it."""
    own = _own_op(m)
    if callable(own):  # a layer that describes its own connectivity (edgewise.remedies)
        return own(n)
    timm = _timm_leaf(m)
    if timm == "identity":
        return "identity", ()
    if timm == "same":
        if in_shape is None or len(in_shape) != n + 1:
            raise _Unsupported(f"{type(m).__name__} (TensorFlow 'same' padding needs the input size)")
        return ("conv" if isinstance(m, nn.Conv2d) else "pool"), _same_axes(m, in_shape[1:])
    if type(m) in _PER_UNIT:
        return "identity", ()
    if isinstance(m, (nn.Conv1d, nn.Conv2d)):
        return "conv", _conv_axes(m, n)
    if isinstance(m, (nn.ConvTranspose1d, nn.ConvTranspose2d)):  # padding_mode is always 'zeros' here
        from ._axis import Transposed

        k, s, d = _pair(m.kernel_size, n), _pair(m.stride, n), _pair(m.dilation, n)
        p, q = _pair(m.padding, n), _pair(m.output_padding, n)
        return "conv", tuple(Transposed(k[a], s[a], d[a], p[a], q[a]) for a in range(n))
    if isinstance(m, Pad):
        return "pool", _pad_axes(m.pad, m.mode, n)
    if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)):
        return "pool", _pool_axes(m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode, n)
    if isinstance(m, (nn.AvgPool1d, nn.AvgPool2d)):
        return "pool", _pool_axes(m.kernel_size, m.stride, m.padding, 1, m.ceil_mode, n)
    if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)):
        return "pool", (Adaptive(),) * n
    if isinstance(m, (nn.ZeroPad1d, nn.ZeroPad2d, nn.ConstantPad1d, nn.ConstantPad2d)):
        return "pool", _pad_axes(m.padding, "constant", n)
    if isinstance(m, (nn.ReflectionPad1d, nn.ReflectionPad2d)):
        return "pool", _pad_axes(m.padding, "reflect", n)
    if isinstance(m, (nn.ReplicationPad1d, nn.ReplicationPad2d)):
        return "pool", _pad_axes(m.padding, "replicate", n)
    if isinstance(m, (nn.CircularPad1d, nn.CircularPad2d)):
        return "pool", _pad_axes(m.padding, "circular", n)
    if isinstance(m, nn.Upsample):
        return "pool", _resample_axes(m.mode, m.align_corners, m.scale_factor, n, m.recompute_scale_factor)
    if isinstance(m, nn.Linear):
        return "linear", ()
    if isinstance(m, (nn.Flatten, nn.Unflatten)):
        return "reshape", ()
    if _shape_preserving(m):
        _PER_UNIT.add(type(m))  # (every case above is decided by the type alone)
        return "identity", ()
    raise _Unsupported(type(m).__name__)


#: the module types :func:`_module_op` found to be per-unit maps (activations, normalisations, dropout)
_PER_UNIT: set[type] = set()


#: timm's documented fx leaf modules (``timm.layers._fx._leaf_modules``) that edgewise maps: convolutions and
#: pools with TensorFlow 'same' padding (computed from the input size at run time), and normalisation +
#: activation layers (per unit: the identity)
_TIMM_SAME = {"Conv2dSame", "StdConv2dSame", "ScaledStdConv2dSame", "MaxPool2dSame", "AvgPool2dSame"}
_TIMM_IDENTITY = {"BatchNormAct2d", "FrozenBatchNormAct2d", "SyncBatchNormAct", "InplaceAbn"}


def _timm_leaf(m: nn.Module) -> str | None:
    """``"same"`` / ``"identity"`` for the timm leaf modules edgewise maps, else None."""
    fx = sys.modules.get("timm.layers._fx")
    t = type(m)
    if fx is None or t not in getattr(fx, "_leaf_modules", ()):
        return None
    return "same" if t.__name__ in _TIMM_SAME else "identity" if t.__name__ in _TIMM_IDENTITY else None


def _timm_autowrap() -> tuple:
    """timm's fx leaf functions (``timm.layers._fx._autowrap_functions``): kept whole by the tracer."""
    fx = sys.modules.get("timm.layers._fx")
    return tuple(f for f in getattr(fx, "_autowrap_functions", ()) if callable(f)) if fx is not None else ()


#: timm fx leaf functions traced into instead: kept whole only for an optional mask (``global_pool_naflex``'s
#: ``patch_valid``, None in a trace: a mean over tokens, a global pool), or choosing, by the input's shape,
#: between ops edgewise maps (crossvit's ``scale_image``: a crop or a bicubic resize; the shape tracer takes the
#: branch this input takes)
_TRACE_INTO = {"global_pool_naflex", "scale_image"}


def _traced_into(fn) -> bool:
    return getattr(fn, "__name__", None) in _TRACE_INTO


def _same_axes(m: nn.Module, spatial: Sequence[int]) -> tuple[Window, ...]:
    """TensorFlow 'SAME' padding (timm's ``pad_same``): total ``max((ceil(n/s)-1)·s + (k-1)·d + 1 - n, 0)``,
    the odd one at the end; max pools pad with -inf (a constant, like zeros for paths), average pools count it."""
    n = len(spatial)
    k, s = _pair(m.kernel_size, n), _pair(m.stride if m.stride not in (None, ()) else m.kernel_size, n)
    d = _pair(getattr(m, "dilation", 1), n)
    ceil = bool(getattr(m, "ceil_mode", False))
    axes = []
    for a in range(n):
        total = max((math.ceil(spatial[a] / s[a]) - 1) * s[a] + (k[a] - 1) * d[a] + 1 - spatial[a], 0)
        pads = (total // 2, total - total // 2)
        if isinstance(m, nn.Conv2d):
            axes.append(Window(k[a], s[a], d[a], pads, "zeros"))
        else:
            axes.append(Window(k[a], s[a], d[a], pads, "zeros", ceil))
    return tuple(axes)


def _function_op(fn, args, kwargs, n: int) -> tuple[str, tuple]:
    """(kind, axes) for a call_function / call_method target, or raise."""
    def arg(i, name, default=None):
        return args[i] if len(args) > i else kwargs.get(name, default)

    if _is_identity_function(fn) or fn in _IDENTITY_METHODS:
        return "identity", ()
    if fn in (operator.pow, torch.pow, "pow") and not isinstance(arg(1, "exponent"), torch.fx.Node):
        return "identity", ()  # x ** k with a number k: a per-unit map
    if fn in _ADD or fn in _ADD_METHODS:
        return "add", ()
    if fn in _MUL or fn in _MUL_METHODS:
        return "mul", ()
    if fn in (torch.cat, torch.concat, "cat"):
        return "cat", ()
    if fn in _RESHAPE_FUNCTIONS or fn in _RESHAPE_METHODS:
        return "reshape", ()
    if fn in (torch.mean, "mean", torch.sum, "sum", torch.amax, "amax"):
        return "pool", "reduce"
    if fn in (F.max_pool1d, F.max_pool2d):
        return "pool", _pool_axes(arg(1, "kernel_size"), arg(2, "stride"), arg(3, "padding", 0),
                                  arg(4, "dilation", 1), arg(5, "ceil_mode", False), n)
    if fn in (F.avg_pool1d, F.avg_pool2d):
        return "pool", _pool_axes(arg(1, "kernel_size"), arg(2, "stride"), arg(3, "padding", 0), 1,
                                  arg(4, "ceil_mode", False), n)
    if fn in (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_max_pool1d, F.adaptive_max_pool2d):
        return "pool", (Adaptive(),) * n
    if fn is F.pad:
        return "pool", _pad_axes(arg(1, "pad"), arg(2, "mode", "constant"), n)
    if fn in (F.conv_transpose1d, F.conv_transpose2d):
        from ._axis import Transposed

        weight = arg(1, "weight")
        meta = _tensor_meta(weight) if isinstance(weight, torch.fx.Node) else weight
        groups = arg(6, "groups", 1)
        if meta is None or len(meta.shape) != n + 2 or not isinstance(groups, int):
            raise _Unsupported(f"{fn.__name__} with a weight whose shape is not known when tracing")
        if groups != 1:  # a functional call's node has groups=1: its channels would be mixed wrongly
            raise _Unsupported(f"{fn.__name__} with groups={groups} (use nn.ConvTranspose{n}d(..., groups={groups}))")
        k = tuple(int(v) for v in meta.shape[2:])
        s, p = _pair(arg(3, "stride", 1), n), _pair(arg(4, "padding", 0), n)
        q, d = _pair(arg(5, "output_padding", 0), n), _pair(arg(7, "dilation", 1), n)
        return "conv", tuple(Transposed(k[a], s[a], d[a], p[a], q[a]) for a in range(n))
    if fn in (F.interpolate, F.upsample):
        return "pool", _resample_axes(arg(3, "mode", "nearest"), arg(4, "align_corners"), arg(2, "scale_factor"), n,
                                      arg(5, "recompute_scale_factor"))
    raise _Unsupported(getattr(fn, "__name__", str(fn)))


class _Unsupported(Exception):
    def __init__(self, op: str):
        self.op = op


# ----------------------------------------------------------------------- tracer

class _Tracer(FastTracer):
    """Keeps torch.nn layers and edgewise's own layers as leaves; traces through the rest.

    Any module with a method ``edgewise_op(ndim) -> (kind, axes)`` is a leaf that describes its own
    connectivity (kind from :data:`edgewise.graph.KINDS`, one ``edgewise._axis`` op per spatial axis).
    """

    def __init__(self):
        super().__init__(autowrap_functions=tuple(f for f in _timm_autowrap() if not _traced_into(f)))
        self._leaf_types: dict[type, bool] = {}  # what makes a module a leaf by its class alone, per class

    def create_arg(self, a):
        """torch.fx's ``create_arg`` for the arguments most ops take (proxies, numbers, strings, dtypes, and
        tuples, lists and str-keyed dicts of them) without its checks for parameters, tensors, modules and
        constants, which cannot match them: a third of a trace's time on DenseNet-121."""
        t = type(a)
        if t in _PLAIN_ARGS:
            return a
        if t in _PROXIES:
            return a.node
        if t is tuple:
            return tuple([self.create_arg(v) for v in a])
        if t is list:
            return [self.create_arg(v) for v in a]
        if t is dict and all(type(k) is str for k in a):
            return {k: self.create_arg(v) for k, v in a.items()}
        if isinstance(a, torch.Tensor) and not isinstance(a, nn.Parameter):
            name = self.tensor_name(a, "buffers")  # (torch.fx walks every buffer for each tensor argument: Gemma4-ViT
            if name is not None:                  # clamps by buffers 224 times)
                return self.create_node("get_attr", name, (), {})
        return super().create_arg(a)

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        by_class = self._leaf_types.get(type(m))
        if by_class is None:  # subclasses of convolutions and Linear (weight standardisation, casts) keep their geometry
            by_class = self._leaf_types[type(m)] = isinstance(m, (Pad, nn.Conv1d, nn.Conv2d, nn.Linear)) or \
                _timm_leaf(m) is not None or super().is_leaf_module(m, qualname)
        return by_class or callable(_own_op(m))


def _leaf_rule():
    """:meth:`_Tracer.is_leaf_module` without making a tracer (tens of µs): the rule reads only its class table."""
    rule = object.__new__(_Tracer)
    rule._leaf_types = {}
    return rule.is_leaf_module


class _ShapeProxy(torch.fx.experimental.meta_tracer.MetaProxy):
    """A proxy that knows its value on the meta device: shapes and shape arithmetic are plain numbers."""

    def _known(self):
        meta = getattr(self, "_tensor_meta", None)
        if meta is None or isinstance(meta, torch.Tensor):
            raise torch.fx.proxy.TraceError(f"{self.node.name}: a data-dependent value used in Python control flow")
        return meta

    def __len__(self):
        meta = getattr(self, "_tensor_meta", None)
        if isinstance(meta, torch.Tensor):
            return len(meta)
        return len(self._known())

    def __int__(self):
        return int(self._known())

    def __index__(self):
        return int(self._known())

    def __float__(self):
        return float(self._known())


#: argument types :meth:`_Tracer.create_arg` passes through as they are (as torch.fx does after its checks
#: for tensors, which are constants or attributes), and the proxy types it turns into their nodes
_PLAIN_ARGS = frozenset({str, int, float, bool, complex, type(None), type(...), torch.dtype, torch.device,
                         torch.memory_format, torch.layout})
_PROXIES = frozenset({torch.fx.Proxy, torch.fx.experimental.meta_tracer.MetaProxy, _ShapeProxy})


def _to_meta(v):
    if isinstance(v, torch.fx.experimental.meta_tracer.MetaDeviceAttribute):
        return "meta"
    if isinstance(v, torch.fx.experimental.meta_tracer.MetaAttribute):  # x.device.type, x.mT, ...: on the value
        root = v.root
        root = torch.device("meta") if isinstance(root, torch.fx.experimental.meta_tracer.MetaDeviceAttribute) \
            else _to_meta(root)
        return getattr(root, v.attr)
    if isinstance(v, torch.fx.Proxy):
        meta = getattr(v, "_tensor_meta", None)
        if meta is None:
            if _TRACED in v.node.meta:  # (an optional argument held at None)
                return v.node.meta[_TRACED]
            raise ValueError("no value")
        return meta
    if isinstance(v, torch.Tensor) and v.device.type != "meta":
        return v.to("meta")
    return v


class _ShapeTracer(_Tracer):
    """The fallback when plain symbolic tracing fails: every proxy carries its value on the meta device
    (as torch.fx.experimental.meta_tracer does), so ``x.shape``, ``x.size(2) % 2`` or ``len(x)`` are
    numbers and Python control flow on shapes takes the branch this input takes. The graph is specific
    to the input shape, which is all a trace is for."""

    _FACTORIES = ("arange", "zeros", "ones", "full", "full_like", "eye", "empty", "linspace", "tensor")

    def __init__(self, x: torch.Tensor):
        super().__init__()
        self._x = x
        self._state: dict = {}

    def proxy(self, node):
        return _ShapeProxy(node, self)

    def to_bool(self, obj) -> bool:
        meta = getattr(obj, "_tensor_meta", None)
        if meta is None or isinstance(meta, torch.Tensor):
            return super().to_bool(obj)
        return bool(meta)

    def iter(self, obj):
        meta = getattr(obj, "_tensor_meta", None)
        if meta is None:
            return super().iter(obj)
        return iter([obj[i] for i in range(len(meta))])

    def call_module(self, m, forward, args, kwargs):
        self._forward = (m, forward)
        return super().call_module(m, forward, args, kwargs)

    def getattr(self, attr, attr_val, parameter_proxy_cache):
        if getattr(self, "_quiet", False):
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    def _meta_state(self, m: nn.Module) -> dict:
        if m not in self._state:
            self._state[m] = {k: torch.empty_like(v, device="meta") for k, v in
                              [*m.named_parameters(), *m.named_buffers()]}
        return self._state[m]

    def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None, proxy_factory_fn=None):
        rv = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
        if kind == "placeholder":
            if self._x is not None:
                rv.install_tensor_meta(self._x)
                rv.node.meta[_TRACED], self._x = self._x, None
            elif len(args) == 1:  # an optional argument held at its default
                rv.node.meta[_TRACED] = args[0]
            return rv
        if kind == "output" or not isinstance(rv, _ShapeProxy):
            return rv
        try:
            a = torch.fx.node.map_aggregate(args, _to_meta)
            k = _on_meta_device(torch.fx.node.map_aggregate(kwargs, _to_meta))
            self._quiet = True
            try:
                out = _meta.result(target, a, k) if kind in ("call_function", "call_method") else None
                if out is not None:
                    pass
                elif kind == "call_function":
                    out = target(*a, **k)
                elif kind == "call_method":
                    out = getattr(a[0], target)(*a[1:], **k)
                elif kind == "call_module":
                    m, forward = self._forward
                    if (out := _layer_made(m, a, k)) is None:
                        from torch.nn.utils.stateless import _reparametrize_module

                        with _reparametrize_module(m, self._meta_state(m)):
                            out = forward(*a, **k)
                elif kind == "get_attr":
                    out = _attr_path(self.root, target)
                    out = out.to("meta") if isinstance(out, torch.Tensor) else out
                else:
                    return rv
            finally:
                self._quiet = False
            rv.install_tensor_meta(out)
            if not _holds_proxy(out):  # (a leaf whose forward calls layers returns their proxies: no value)
                rv.node.meta[_TRACED] = out
        except Exception:  # no value: the proxy stays symbolic (and the shapes come from the meta pass)
            pass
        return rv

    def trace(self, root, concrete_args=None):
        patched = {}
        for fn in self._FACTORIES:  # tensor factories called with traced sizes become graph nodes
            orig = getattr(torch, fn)
            patched[fn] = orig
            setattr(torch, fn, _factory(orig))
        try:
            return super().trace(root, concrete_args)
        finally:
            for fn, orig in patched.items():
                setattr(torch, fn, orig)


def _holds_proxy(value) -> bool:
    found = []
    torch.fx.node.map_aggregate(value, lambda v: found.append(v) if isinstance(v, torch.fx.Proxy) else None)
    return bool(found)


def _factory(orig):
    def wrapper(*args, **kwargs):
        proxy = None

        def find(v):
            nonlocal proxy
            if isinstance(v, torch.fx.Proxy):
                proxy = v
        torch.fx.node.map_aggregate((args, kwargs), find)
        if proxy is not None:
            return proxy.tracer.create_proxy("call_function", orig, args, kwargs)
        return orig(*args, **kwargs)
    wrapper.__name__ = orig.__name__
    return wrapper


def _attr_path(obj, target: str):
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _shape_preserving(m: nn.Module) -> bool:
    """Leaf modules whose output has their input's shape (normalisation, dropout, activations)."""
    return isinstance(m, _IDENTITY_MODULES) or (
        type(m).__module__ == "torch.nn.modules.activation" and not isinstance(m, _NOT_ELEMENTWISE)
    )


def _record(n: torch.fx.Node, result) -> None:
    """Record what a shape pass found for node ``n``: a tensor's shape and dtype, or shape arithmetic (a number,
    a size, a tuple of numbers: for following data movement, see :mod:`edgewise._layout`)."""
    if isinstance(result, torch.Tensor):
        n.meta["tensor_meta"] = SimpleNamespace(shape=result.shape, dtype=result.dtype)
    elif is_arithmetic(result):
        n.meta["value"] = result


def is_arithmetic(value) -> bool:
    """Whether a node's value is shape arithmetic, recorded for the Graph build: a number, a size, a tuple or list
    of numbers (not a device or dtype, which the build must not apply to its own tensors)."""
    return isinstance(value, (int, float, bool, torch.Size)) or (
        isinstance(value, (tuple, list)) and all(isinstance(v, (int, float, bool)) for v in value))


#: the key under which :class:`_ShapeTracer` keeps each node's value on the meta device until the shapes are taken
_TRACED = "edgewise_traced"


def _take_traced(model: nn.Module, fx_graph: torch.fx.Graph, dtype) -> bool:
    """Record every node's shape from the values :class:`_ShapeTracer` found as it traced (the meta pass would run
    the same ops again on the same meta tensors), where it found one for every node and its input had ``dtype``;
    False (nothing recorded) otherwise. The values are dropped from the nodes either way."""
    nodes = list(fx_graph.nodes)
    traced = {n: n.meta.pop(_TRACED) for n in nodes if _TRACED in n.meta}
    for n in nodes:  # (tensors torch.fx made attributes as arguments: their nodes were made without a proxy)
        if n.op == "get_attr" and n not in traced:
            traced[n] = _attr_path(model, n.target)
    x = next((v for n, v in traced.items() if n.op == "placeholder"), None)
    if len(traced) != len(nodes) - 1 or not isinstance(x, torch.Tensor) or x.dtype != dtype:
        return False
    for n in nodes:
        _record(n, torch.fx.node.map_arg(n.args[0], traced.__getitem__) if n.op == "output" else traced[n])
    return True


class _ShapeProp(torch.fx.Interpreter):
    """Records every node's output shape in ``node.meta["tensor_meta"]``.

    Shape-preserving leaf modules pass their input through instead of running (norms where the input fits them):
    only shapes are needed, and batch norm is the slowest op on the meta device; the results :mod:`edgewise._meta`
    makes are taken instead of running torch's reference code. ``on_meta``: tensors the model holds that are not
    its parameters or buffers (which ``functional_call`` swaps) are read on the meta device too, and a call given a
    ``device`` (a constant the trace took from a tensor: timm's rotary grids) makes its tensors there.
    """

    def __init__(self, module: nn.Module, graph: torch.fx.Graph, on_meta: bool = False):
        super().__init__(module, graph=graph)
        self.on_meta = on_meta

    def get_attr(self, target, args, kwargs):
        value = super().get_attr(target, args, kwargs)
        if self.on_meta and isinstance(value, torch.Tensor) and value.device.type != "meta":
            return value.to("meta")  # (a plain tensor attribute: Qwen3-ViT's rotary bands)
        return value

    def run_node(self, n: torch.fx.Node):
        result = super().run_node(n)
        _record(n, result)
        return result

    def call_module(self, target, args, kwargs):
        out = _layer_made(self.fetch_attr(target), args, kwargs)
        return super().call_module(target, args, kwargs) if out is None else out

    def call_function(self, target, args, kwargs):
        out = _meta.result(target, args, kwargs)
        return super().call_function(target, args, self._device(kwargs)) if out is None else out

    def call_method(self, target, args, kwargs):
        out = _meta.result(target, args, kwargs)
        return super().call_method(target, args, self._device(kwargs)) if out is None else out

    def _device(self, kwargs: dict) -> dict:
        return _on_meta_device(kwargs) if self.on_meta else kwargs


def _layer_made(m: nn.Module, args: tuple, kwargs: dict):
    """What a shape pass takes for leaf layer ``m`` instead of running it, or None (run it): the input of a
    shape-preserving layer (a norm only where the input fits it: one made for other channels or axes runs, and
    raises torch's error; batch norm is the slowest op on the meta device), or what :mod:`edgewise._meta` makes."""
    if len(args) == 1 and not kwargs and isinstance(args[0], torch.Tensor) and _shape_preserving(m) and \
            norm_fits(m, args[0].shape):
        return args[0]
    return _meta.module_result(m, args, kwargs)


def _on_meta_device(kwargs: dict) -> dict:
    """A call's keyword arguments on meta tensors with its ``device`` (given, None, or a constant the trace read from
    a tensor: timm's rotary grids) the meta device: the tensors it makes join the others there."""
    device = kwargs.get("device", False)
    if device is None or isinstance(device, (torch.device, str)):
        return {**kwargs, "device": "meta"}  # (a new dict: torch.fx's may be immutable)
    return kwargs


class _MetaRun(nn.Module):
    """Runs :class:`_ShapeProp` as a module, so that ``functional_call`` can swap in meta weights."""

    def __init__(self, model: nn.Module, fx_graph: torch.fx.Graph):
        super().__init__()
        self.model, self.fx_graph = model, fx_graph

    def forward(self, x):
        return _ShapeProp(self.model, graph=self.fx_graph, on_meta=True).run(x)


def _propagate_shapes(model: nn.Module, fx_graph: torch.fx.Graph, shape, dtype, device) -> None:
    """Shapes of every node: on the meta device (no arithmetic, no memory) when the model runs
    there, otherwise by a real forward pass on a zero input.

    The graph is interpreted against ``model`` itself (no GraphModule: generating its
    Python code costs as much as the shapes); on the meta device ``functional_call``
    swaps meta tensors in for the weights while it runs and restores them after.
    """
    with torch.no_grad():
        try:
            fakes: dict[int, torch.Tensor] = {}  # one meta tensor per real one: tied weights stay tied
            meta = {f"model.{k}": fakes.setdefault(id(v), torch.empty_like(v, device="meta")) for k, v in
                    _once_per_slot(model, [*model.named_parameters(remove_duplicate=False),
                                           *model.named_buffers(remove_duplicate=False)])}
            x = torch.zeros((1, *shape), dtype=dtype, device="meta")
            torch.func.functional_call(_MetaRun(model, fx_graph), meta, (x,), tie_weights=False)
            return
        except Exception:  # an op without a meta kernel, data-dependent values, tensors made on the CPU, ...
            for n in fx_graph.nodes:
                n.meta.pop("tensor_meta", None)
        _ShapeProp(model, graph=fx_graph).run(torch.zeros((1, *shape), dtype=dtype, device=device))


def _once_per_slot(model: nn.Module, named: list) -> list:
    """``(name, tensor)`` pairs with one name per (module, attribute): a module registered under two names
    (CoaT shares its position-encoding convolutions between blocks) would otherwise be swapped twice by
    ``functional_call`` and keep the meta tensor of the second swap when the first is undone."""
    seen, out = set(), []
    for k, v in named:
        owner, _, leaf = k.rpartition(".")
        slot = (id(model.get_submodule(owner)), leaf)
        if slot not in seen:
            seen.add(slot)
            out.append((k, v))
    return out


def _defaults(model: nn.Module) -> dict | None:
    """forward()'s optional arguments after the input (``attn_mask=None``, ``is_causal=False``) at their
    defaults: the model is traced as called with one tensor."""
    import inspect

    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return None
    out = {p.name: p.default for p in params[1:]
           if p.default is not inspect.Parameter.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return out or None


def _tensor_meta(node: torch.fx.Node):
    meta = node.meta.get("tensor_meta")
    return meta if hasattr(meta, "shape") else None


def trace(model: nn.Module, input_shape, name: str | None = None, layer: str | None = None,
          norm_stats: str = "ignore") -> Graph:
    """Trace ``model`` on an input of ``input_shape`` (C×L or C×H×W) into a :class:`Graph`.

    The model is traced in eval mode; its weights and training flags are left as
    they were. The Graph of the last trace of a model is reused while the model's
    structure (modules, their hyper-parameters and parameter shapes) is unchanged;
    treat it as read-only. Another model object of the same architecture (same
    fingerprint, see :mod:`edgewise._fingerprint`) gets a copy of a recent trace.

    With ``layer`` (a dotted module name, or an fx node name) only what that layer depends on is
    traced, and the Graph ends there (its output node is named ``layer``): a model with an op edgewise
    cannot map later on can still be analysed up to that layer.

    ``norm_stats="count"`` makes the statistics of every normalisation connections: a unit of LayerNorm,
    GroupNorm, InstanceNorm, RMSNorm, ``F.normalize`` (or BatchNorm without running statistics) also reads,
    once each, every unit its statistics are computed over (see :mod:`edgewise._stats`); ``"ignore"``
    (default) keeps them per-unit maps. The Graph records the choice (``graph.norm_stats``).

    Example:
        >>> g = edgewise.trace(torchvision.models.resnet18(), (3, 224, 224))
        >>> g["layer4.1.conv2"].shape
        (512, 7, 7)
    """
    if not isinstance(model, nn.Module):
        raise EdgewiseError(f"trace expects an nn.Module, got {type(model).__name__}")
    shape = parse_shape(input_shape)
    check_norm_stats(norm_stats)
    named = _named_modules(model)
    arch, shareable = fingerprint(model, named)
    key = (arch, shape, layer, norm_stats)  # (not the name: a trace under another name is the same Graph)
    graph = _CACHE.get(model, key, shareable)
    if graph is None:
        graph = _trace(model, shape, name, layer, norm_stats, arch if shareable else None, named)
        _CACHE.put(model, key, shareable, graph)
    model_name = name or type(model).__name__
    return graph if graph.model_name == model_name else dataclasses.replace(graph, model_name=model_name)


#: traced Graphs by architecture fingerprint (per model object, and a small LRU shared between objects)
_CACHE = GraphCache()
#: symbolic torch.fx graphs by architecture fingerprint: another input size needs only new shapes
_FX = LRU(4)


def fx_prefix(model: nn.Module, fx_graph: torch.fx.Graph, layer: str) -> torch.fx.Graph:
    """The part of ``fx_graph`` that ``layer``'s output depends on, ending with it: the layer's (first)
    call for a leaf module or an fx node name, the last op inside it for a container."""
    def inside(n):
        return any(isinstance(v, tuple) and (v[0] == layer or str(v[0]).startswith(layer + "."))
                   for v in (n.meta.get("nn_module_stack") or {}).values())

    nodes = list(fx_graph.nodes)
    target = next((n for n in nodes if (n.op == "call_module" and n.target == layer) or n.name == layer), None)
    if target is None:
        target = next((n for n in reversed(nodes) if n.op not in ("output", "placeholder") and inside(n)), None)
    if target is None:
        import difflib

        names = [k for k, _ in model.named_modules() if k]
        close = difflib.get_close_matches(layer, names, n=3)
        raise EdgewiseError(f"no layer named {layer!r} in {type(model).__name__}"
                            + (f". Did you mean {', '.join(map(repr, close))}?" if close else ".")
                            + " Layer names are those of model.named_modules() (listed by `edgewise rf MODEL`).")
    keep, stack = set(), [target]
    while stack:
        cur = stack.pop()
        if cur not in keep:
            keep.add(cur)
            stack.extend(cur.all_input_nodes)
    cut, env = torch.fx.Graph(), {}
    for n in nodes:
        if n in keep:
            env[n] = cut.node_copy(n, lambda a: env[a])
    cut.output(env[target])
    return cut


def _trace(model: nn.Module, shape: tuple[int, ...], name: str | None, layer: str | None = None,
           norm_stats: str = "ignore", arch=None, named: list | None = None) -> Graph:
    """The trace itself; ``arch``: the model's shareable architecture fingerprint (or None), under which
    its symbolic fx graph is kept for other input sizes; ``named``: ``_named_modules(model)`` if known."""
    model_name = name or type(model).__name__
    if _leaf_rule()(model, ""):  # a bare layer: fx would trace into its forward
        model, named = nn.Sequential(OrderedDict([(type(model).__name__.lower(), model)])), None
    attrs = set(vars(model))
    try:
        return _trace_root(model, shape, model_name, layer, norm_stats, arch, attrs, named)
    finally:  # the constants torch.fx stored on the model (``_tensor_constant0``) go: it is left as it was
        for k in set(vars(model)) - attrs:
            delattr(model, k)


def _trace_root(model: nn.Module, shape: tuple[int, ...], model_name: str, layer: str | None, norm_stats: str,
                arch, attrs: set, named: list | None = None) -> Graph:
    n = len(shape) - 1
    named = dict(named or _named_modules(model))
    modules = list(named.values())
    flags = {m: m.training for m in modules}
    caches, direct = _caches(modules), False
    try:
        direct = _eval(model, modules)  # trace the inference graph (no auxiliary heads, no batch statistics)
        if layer is None and norm_stats == "ignore":  # a plain CNN: its Graph recorded as its forward runs
            recorded = direct_graph(model, shape, named, _leaf_rule())
            if recorded is not None:
                return _graph(model, *recorded, shape, model_name, norm_stats)
            _restore(caches)
        try:
            fx_graph = _fx_graph(model, shape, caches, attrs, arch, named)
        except Exception as e:  # symbolic tracing fails on data-dependent control flow
            raise EdgewiseError(
                f"could not trace {model_name} with torch.fx: {type(e).__name__}: {_first_line(e)}. "
                "Data-dependent Python control flow cannot be traced; move it out of forward() or "
                "trace a sub-module instead."
            ) from e
        if layer is not None:
            fx_graph = fx_prefix(model, fx_graph, layer)
        param = next(model.parameters(), None)
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
        device = param.device if param is not None else "cpu"
        _restore(caches)
        if not infer_shapes(model, fx_graph, shape, dtype, named) and not _take_traced(model, fx_graph, dtype):
            _propagate_shapes(model, fx_graph, shape, dtype, device)  # an op whose shape needs running it
    except EdgewiseError:
        raise
    except Exception as e:
        raise EdgewiseError(
            f"{model_name} does not run on an input of shape {'x'.join(map(str, shape))} "
            f"(batch axis added): {type(e).__name__}: {_first_line(e)}{_input_hint(named, shape)}"
        ) from e
    finally:
        for m, flag in flags.items():
            if direct:
                m.__dict__["training"] = flag
            else:
                m.training = flag
        _restore(caches)
    try:
        graph = _build(model, fx_graph, shape, n, model_name, norm_stats, named)
    finally:  # _build may evaluate constants (masks, biases) through the model's own code
        _restore(caches)
    return named_output(graph, layer) if layer is not None else graph


def _input_hint(named: dict, shape) -> str:
    """Where the input's shape disagrees with the model's first convolution (its number of spatial axes or of
    channels, said with an example shape) or with the size a timm model was built for; "" where they agree."""
    first = next((m for m in named.values() if isinstance(m, nn.modules.conv._ConvNd)), None)
    name = next((k for k, m in named.items() if m is first), "")
    axes, have = len(first.kernel_size) if first is not None else len(shape) - 1, len(shape) - 1
    example = "x".join(map(str, (first.in_channels or 3, *(224,) * axes))) if first is not None else ""
    if have != axes:
        return (f". Its first convolution, {name} ({type(first).__name__}), has {axes} spatial "
                f"ax{'is' if axes == 1 else 'es'} and the input {have}: pass channels × "
                f"{' × '.join('LHW'[axes == 2:][:axes] if axes < 3 else 'DHW')}, e.g. {example}")
    if first is not None and first.in_channels and first.in_channels != shape[0]:  # (a lazy conv: 0 until it runs)
        return (f". Its first convolution, {name}, takes {first.in_channels} channel"
                f"{'s' if first.in_channels != 1 else ''} and the input has {shape[0]}: e.g. {example}")
    size = (getattr(named.get(""), "pretrained_cfg", None) or {}).get("input_size")  # (timm's configured size)
    if isinstance(size, (tuple, list)) and tuple(size) != tuple(shape) and all(isinstance(v, int) for v in size):
        return (f". It was built for {'x'.join(map(str, size))} (its pretrained_cfg input_size), and some models "
                f"run at that size only: try an input of {'x'.join(map(str, size))}")
    return ""


def _fx_graph(model: nn.Module, shape, caches: list, attrs: set, arch, named: dict | None = None) -> torch.fx.Graph:
    """The model's torch.fx graph: symbolic, and then shared by every model object of the architecture
    ``arch`` (shapes are recomputed for each input), or, where forward() branches on shapes, traced with
    values for this input shape only; ``named``: ``dict(_named_modules(model))`` if known."""
    fx_graph = _FX.get(arch) if arch is not None else None
    if fx_graph is not None:
        for node in fx_graph.nodes:  # the shapes of the last input it was used for
            node.meta.pop("tensor_meta", None)
            node.meta.pop("value", None)
        return fx_graph
    concrete = _defaults(model)
    try:
        fx_graph = _Tracer().trace(model, concrete, paths=named and {m: k for k, m in named.items()})
    except Exception:  # control flow on shapes: trace again with values on the meta device
        _restore(caches)
        dtype0 = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
        return _ShapeTracer(torch.zeros((1, *shape), dtype=dtype0, device="meta")).trace(model, concrete)
    if arch is not None and set(vars(model)) == attrs:  # (a graph reading constants fx stored on this model: not)
        _FX.put(arch, fx_graph)
    return fx_graph


def _caches(modules: list) -> list:
    """Every module's plain dict/list attributes and their contents: some models cache tensors in eval mode
    (timm's attention-bias caches), and a trace must not leave proxies or meta tensors in them; also the
    buffers, which a forward may reassign (ConViT's ``rel_indices``). Of torch's own layers only the buffers:
    their forwards keep nothing in their attributes."""
    out = []
    for m in modules:
        d = m.__dict__
        cls = type(m)
        if cls.__module__.startswith("torch.nn.modules."):
            b = d["_buffers"]
            out.append((m, "_buffers", b, b.copy() if b else ()))  # (most layers have none: nothing to copy)
            continue
        for k in _public(cls, d):
            v = d[k]
            if isinstance(v, (dict, list)):
                out.append((m, k, v, v.copy()))
    return out


def _public(cls: type, d: dict) -> tuple:
    """The names in a module's ``__dict__`` that :func:`_caches` looks at: ``_buffers`` and those not
    starting with ``_``, in dict order (kept per class while its instances' dicts have the same names)."""
    names = tuple(d)
    hit = _PUBLIC.get(cls)
    if hit is None or hit[0] != names:
        if len(_PUBLIC) >= 4096:
            _PUBLIC.clear()
        hit = _PUBLIC[cls] = names, tuple(k for k in names if not k.startswith("_") or k == "_buffers")
    return hit[1]


_PUBLIC: dict = {}


def _eval(model: nn.Module, modules: list) -> bool:
    """``model.eval()``: the flags set directly where no module overrides ``train`` (nor the model ``eval``),
    as nn.Module's recursion through ``__setattr__`` costs microseconds a module; whether they were (and so
    may be set back the same way)."""
    if type(model).eval is not nn.Module.eval or any(type(m).train is not nn.Module.train for m in modules):
        model.eval()
        return False
    for m in modules:
        m.__dict__["training"] = False
    return True


def _restore(caches: list) -> None:
    for m, k, obj, saved in caches:
        if obj or saved:  # (an empty one still empty: nothing to do)
            obj.clear()
            if isinstance(obj, dict):
                obj.update(saved)
            else:
                obj.extend(saved)
        m.__dict__[k] = obj


def named_output(graph: Graph, layer: str) -> Graph:
    """``graph`` with its output node called ``layer`` (an identity node after the op that ends a container)."""
    if graph.output == layer:
        return graph
    out = graph[graph.output]
    nodes = dict(graph.nodes)
    nodes[layer] = Node(layer, "identity", (out.name,), out.shape, op=f"output of {layer}")
    return Graph(nodes, graph.input, layer, graph.input_shape, graph.model_name, graph.padding, graph.norm_stats,
                 graph.norm_layers, graph.scales)


def _build(model: nn.Module, fx_graph: torch.fx.Graph, shape, n: int, model_name: str,
           norm_stats: str = "ignore", modules: dict | None = None) -> Graph:
    """The Graph of ``fx_graph`` (shapes recorded); ``modules``: ``dict(model.named_modules())`` if known."""
    if modules is None or any(fx.op == "call_module" and fx.target not in modules for fx in fx_graph.nodes):
        modules = dict(_named_modules(model))  # (none given, or a forward that registered layers while traced)
    nodes: dict[str, Node] = {}
    fx_to_name: dict[torch.fx.Node, str] = {}
    calls: dict[str, int] = {}  # calls of each module so far
    dims: dict = {}  # torch.Size with the batch axis -> the node's shape
    output = None

    def add(name: str, kind: str, inputs: tuple, out_shape: tuple, axes=(), groups: int = 1, op: str = "",
            pick: tuple = ()) -> str:
        base, k = name, 1
        while name in nodes:
            k += 1
            name = f"{base}#{k}" if "#" not in base else f"{base}.{k}"
        nodes[name] = _node(name, kind, tuple(inputs), tuple(out_shape), tuple(axes), int(groups), op, tuple(pick))
        layout.register(name, out_shape)
        return name

    layout = Layout(nodes, fx_to_name, add, modules, model)
    layout.count_stats, layout.norm_layers = norm_stats == "count", []
    scales, factor = {}, None  # products of a tensor and one parameter: node -> the parameter (Graph.scales)
    for fx in fx_graph.nodes:
        if fx.op == "output":
            out = fx.args[0]
            message = getattr(layout.units.get(out) if isinstance(out, torch.fx.Node) else None, "message", None)
            if isinstance(message, str):  # a product edgewise could map only as a term of attention logits
                raise EdgewiseError(f"{message} ({model_name})")
            if isinstance(out, torch.fx.Node):
                layout.check_output(out)
            if isinstance(out, torch.fx.Node) and isinstance(layout.units.get(out), torch.Tensor):
                ids = layout.units.pop(out)
                try:
                    fx_to_name[out] = layout.canonical(ids, "output")
                except EdgewiseError:
                    if ids.ndim < 3:
                        raise
                    # a token-major output (N, H, W, C), as Swin keeps between stages: its units, channels first
                    fx_to_name[out] = layout.canonical(ids.permute(0, ids.ndim - 1, *range(1, ids.ndim - 1)),
                                                       "output")
            if isinstance(out, torch.fx.Node):
                layout.raise_unmapped(out)
            if not isinstance(out, torch.fx.Node) or out not in fx_to_name:
                raise EdgewiseError(
                    f"{model_name} returns {type(out).__name__ if not isinstance(out, torch.fx.Node) else 'a non-tensor'}, "
                    "not a single tensor; wrap it in an nn.Module of your own whose forward() returns the one tensor "
                    "to analyse (on the command line as MODEL path/to/file.py:make_model)."
                )
            output = fx_to_name[out]
            continue
        if fx.op == "call_module":
            k = calls[fx.target] = calls.get(fx.target, 0) + 1
            node_name = fx.target if k == 1 else f"{fx.target}#{k - 1}"
        else:
            node_name = fx.name
        if fx.op in ("call_module", "call_function", "call_method"):
            try:
                if layout.handle(fx, node_name):
                    continue
            except EdgewiseError as e:
                raise EdgewiseError(f"{e}{_where(fx, node_name)} ({model_name})") from None
        meta = _tensor_meta(fx)
        if meta is None:
            live = [a for a in fx.all_input_nodes if a in fx_to_name and nodes[fx_to_name[a]].kind != "const"]
            if live and "value" not in fx.meta and fx.op != "placeholder" and fx.target is not getattr:  # several tensors out: not mapped
                op = _qualname(fx.target)
                raise EdgewiseError(
                    f"layer {node_name!r}{_where(fx, node_name)} of {model_name} uses {op}, which edgewise cannot "
                    "map to position-to-position connections. Analyse only the part before it: pass "
                    f"layer='{_before(nodes, fx_to_name, live)}' (--layer on the command line).")
            continue  # shape arithmetic (x.size(0), ...) carries no units
        out_shape = dims.get(meta.shape)
        if out_shape is None:
            out_shape = dims[meta.shape] = tuple(map(int, meta.shape[1:]))
        srcs = _tensor_args(fx, fx_to_name)
        if fx.op == "placeholder":
            if any(nd.kind == "input" for nd in nodes.values()):
                raise EdgewiseError(f"{model_name}.forward takes several tensors; edgewise traces models with one input")
            kind, axes, op, node_name = "input", (), "input", "input"
        elif fx.op == "get_attr":
            kind, axes, op, node_name = "const", (), "get_attr", fx.target
        else:
            if fx.op == "call_module":
                mod = modules[fx.target]
                op = type(mod).__name__
            else:
                op = _qualname(fx.target)
            if _all_const(srcs, nodes, fx_to_name):  # torch.zeros(...), arithmetic on weights
                kind, axes = "const", ()
            else:
                in_shape = nodes[fx_to_name[srcs[0]]].shape
                try:
                    if fx.op == "call_module":
                        kind, axes = _module_op(mod, len(in_shape) - 1, in_shape)
                    else:
                        kind, axes = _function_op(fx.target, fx.args, fx.kwargs, len(in_shape) - 1)
                except _Unsupported as u:
                    raise EdgewiseError(
                        f"layer {node_name!r}{_where(fx, node_name)} of {model_name} uses {u.op}, which edgewise "
                        "cannot map to position-to-position connections. Supported: convolutions (incl. transposed), "
                        "pooling (incl. adaptive), padding, Linear, attention, permute/reshape/roll/window partitions, "
                        "activations, normalisation, dropout, +, *, torch.cat, interpolation. Replace it, or analyse "
                        f"only the part before it: pass layer='{_before(nodes, fx_to_name, srcs)}' (--layer on the "
                        "command line)."
                    ) from None
                operands = srcs
                kind, axes, srcs = _refine(kind, axes, fx, srcs, nodes, fx_to_name, out_shape, node_name)
                if kind == "identity" and op in _PRODUCTS and len(operands) == 2 and len(srcs) == 1:
                    factor = _parameter_of(operands[operands[0] is srcs[0]], nodes, fx_to_name)  # (a layer scale)
        inputs = tuple(map(fx_to_name.__getitem__, srcs))  # repeats kept: x + x has two operands
        groups = _attr(modules.get(fx.target), "groups", 1) if fx.op == "call_module" else 1
        fx_to_name[fx] = add(node_name, kind, inputs, out_shape, axes, groups, op)
        if factor is not None:
            scales[fx_to_name[fx]], factor = factor, None
    nodes = _prune(nodes, output)
    return _graph(model, nodes, output, shape, model_name, norm_stats, tuple(layout.norm_layers),
                  {k: v for k, v in scales.items() if k in nodes})


def _graph(model: nn.Module, nodes: dict, output: str, shape, model_name: str, norm_stats: str,
           norm_layers: tuple = (), scales: dict | None = None) -> Graph:
    """The Graph of ``nodes`` (each read by ``output``) traced from ``model``; a spec net's padding recorded."""
    padding = getattr(model, "padding", None) if hasattr(model, "spec") else None
    return Graph(nodes, "input", output, shape, model_name, padding, norm_stats, norm_layers, scales or {})


#: the ops of a product of two tensors (``x * gamma``, ``x.mul(gamma)``, ``torch.mul``)
_PRODUCTS = frozenset({"operator.mul", "mul", "torch.mul", "operator.imul", "mul_"})


def _parameter_of(fx: torch.fx.Node, nodes: dict, fx_to_name: dict) -> str | None:
    """The one parameter or buffer a constant operand is made from (``gamma``, or ``gamma.reshape(1, -1, 1, 1)``:
    the get_attr behind a chain of constants), or None."""
    found, stack, seen = set(), [fx_to_name[fx]], set()
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        nd = nodes[name]
        if nd.kind != "const":
            return None
        if nd.op == "get_attr":
            found.add(name)
        stack.extend(nd.inputs)
    return found.pop() if len(found) == 1 else None


def _node(name: str, kind: str, inputs: tuple, shape: tuple, axes: tuple, groups: int, op: str, pick: tuple) -> Node:
    """``Node(...)`` with its fields set at once (a frozen dataclass's ``__init__`` sets them one by one through
    ``object.__setattr__``: half the cost of a trace's node)."""
    node = object.__new__(Node)
    node.__dict__.update(name=name, kind=kind, inputs=inputs, shape=shape, axes=axes, groups=groups, op=op, pick=pick)
    return node


def _all_const(srcs: list, nodes: dict, fx_to_name: dict) -> bool:
    """Whether every operand is a constant (vacuously: no operands)."""
    for a in srcs:
        if nodes[fx_to_name[a]].kind != "const":
            return False
    return True


def _before(nodes: dict, fx_to_name: dict, srcs) -> str:
    """The layer an unsupported op reads (where a prefix analysis can stop)."""
    return fx_to_name.get(srcs[0], "input") if srcs else next(reversed(nodes), "input")


def _where(fx: torch.fx.Node, node_name: str) -> str:
    """`` (in module 'a.b', Type)`` for a functional op inside a module's forward, so that the user can find
    it among ``named_modules()`` (torch.fx names such ops after the function: 'permute_2')."""
    try:
        path, kind = list((fx.meta.get("nn_module_stack") or {}).values())[-1]
    except (IndexError, TypeError, ValueError):  # no enclosing module, or another torch's format
        return ""
    if not path or path == node_name:
        return ""
    kind = getattr(kind, "__name__", None) or str(kind).rsplit(".", 1)[-1]
    return f" (in module {path!r}, {kind})"


def _tensor_args(fx: torch.fx.Node, known: dict) -> list[torch.fx.Node]:
    """Tensor operands in argument order, repeats kept (fx's all_input_nodes drops them)."""
    found: list[torch.fx.Node] = []
    _collect(fx.args, known, found)  # (a tuple)
    if fx.kwargs:
        _collect(fx.kwargs, known, found)
    return found


def _collect(a, known: dict, found: list) -> None:
    """Append the fx nodes of ``known`` in ``a`` to ``found``, in argument order."""
    found.extend([v for v in arg_values(a) if isinstance(v, torch.fx.Node) and v in known])


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else ""


def _qualname(fn: Callable) -> str:
    """A Graph node's ``op`` for an fx target: a method's name, a function's module and name (``F.relu``,
    ``torch.mean``); never a repr, whose memory address would differ from one process to the next."""
    if isinstance(fn, str):
        return fn
    name = getattr(fn, "__name__", None)
    if not isinstance(name, str):
        return type(fn).__qualname__
    mod = getattr(fn, "__module__", "") or ""
    mod = {"torch.nn.functional": "F", "_operator": "operator"}.get(mod, mod)
    return f"{mod}.{name}" if mod else name


def _refine(kind, axes, fx, srcs, nodes, fx_to_name, out_shape, node_name):
    """Checks and per-op details that need the shapes of the operands."""
    in_shape = nodes[fx_to_name[srcs[0]]].shape
    if kind in ("add", "mul"):
        shapes = [nodes[fx_to_name[s]].shape for s in srcs]
        live = [s for s in srcs if nodes[fx_to_name[s]].kind != "const"]
        if len(live) == 1:
            return "identity", (), live
        if len({len(sh) for sh in shapes}) != 1:
            raise EdgewiseError(f"layer {node_name!r}: operands of {len(shapes[0])} and {len(shapes[1])} dims; "
                                "broadcasting across different ranks is not supported")
        return kind, (), srcs
    if kind == "identity" and tuple(in_shape) != tuple(out_shape):
        raise EdgewiseError(f"layer {node_name!r} changes the shape {in_shape} → {out_shape}; "
                            "edgewise expected an elementwise op here")
    if kind == "cat":
        dim = fx.args[1] if len(fx.args) > 1 else fx.kwargs.get("dim", 0)
        if dim % (len(in_shape) + 1) != 1:  # dims counted with the batch axis
            raise EdgewiseError(f"layer {node_name!r} concatenates along dim {dim}; only channel concatenation "
                                "(dim=1) is supported")
        return kind, (), srcs
    if kind == "linear" and len(in_shape) != 1:
        raise EdgewiseError(f"layer {node_name!r}: Linear applied to a {len(in_shape)}-D feature map {in_shape}; "
                            "flatten before the Linear layer")
    if kind == "conv":
        sizes = _window_sizes(axes, in_shape)
        if sizes is None:  # (a transposed one may take output_size)
            sizes = tuple(out_shape[1:])
        flat = len(axes) == 1 and isinstance(axes[0], Flat)  # a layer's own flattened-grid op (global remedy)
        if (len(axes) != len(in_shape) - 1 and not flat) or sizes != tuple(out_shape[1:]):
            raise EdgewiseError(f"layer {node_name!r} ({fx.target if fx.op == 'call_module' else 'conv'}) maps "
                                f"{in_shape} → {out_shape}, not the {sizes} its kernel, stride, padding and dilation "
                                "give; it pads or crops in a way edgewise cannot see")
        return kind, axes, srcs[:1]
    if kind == "pool":
        if axes == "reduce":
            dims = fx.args[1] if len(fx.args) > 1 else fx.kwargs.get("dim")
            dims = {d % (len(in_shape) + 1) for d in (dims if isinstance(dims, (tuple, list)) else [dims])}
            if dims != set(range(2, len(in_shape) + 1)):
                raise EdgewiseError(f"layer {node_name!r} reduces over dims {sorted(dims)}; only reductions over "
                                    "all spatial axes (a global pool) are supported")
            axes = (Adaptive(),) * (len(in_shape) - 1)
        if len(in_shape) == len(out_shape) and in_shape[0] != out_shape[0]:
            raise EdgewiseError(f"layer {node_name!r} changes the channel count {in_shape[0]} → {out_shape[0]}")
        return kind, axes, srcs[:1]
    if kind == "reshape":
        if math.prod(in_shape) != math.prod(out_shape):
            raise EdgewiseError(f"layer {node_name!r} reshapes {in_shape} → {out_shape} across the batch axis")
        return kind, (), srcs[:1]
    return kind, axes, srcs[:1]


def _window_sizes(axes, in_shape) -> tuple | None:
    """The output lengths of a convolution's axes if they are all Windows (None: not, or no axes)."""
    if not axes:
        return None
    for a in axes:
        if type(a) is not Window:
            return None
    return tuple([a.out_size(size) for a, size in zip(axes, in_shape[1:])])


def _prune(nodes: dict[str, Node], output: str) -> dict[str, Node]:
    """Keep nodes the output depends on (and the input), in topological order."""
    keep, stack = set(), [output]
    while stack:
        cur = stack.pop()
        if cur not in keep:
            keep.add(cur)
            stack.extend(nodes[cur].inputs)
    keep.add("input")
    return {k: v for k, v in nodes.items() if k in keep}

