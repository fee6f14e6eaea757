"""Architecture fingerprints, and the cache of traced Graphs keyed by them.

A fingerprint holds everything a trace depends on and nothing it does not:
module names and types, every module's forward function, its plain attributes
(kernel sizes, strides, flags, ...; compared as values, never ``repr()``-ed),
parameter shapes and dtypes, buffer shapes and dtypes, and the values of the
buffers that are not normalisation statistics (index tables, masks). Weights
and running statistics are not part of it, so a second ``resnet50()`` — or a
trained one — has the same fingerprint as the first.

A model with something the fingerprint cannot compare by value (an attribute of
an unknown type, a forward overridden on the instance, forward hooks, a buffer
on the meta device) gets a fingerprint that is only valid for that model
object: its trace is reused for the same object, never shared with others.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import types
import weakref
from collections import OrderedDict

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _NormBase

__all__ = ["fingerprint", "GraphCache", "LRU"]

_INTERNAL = frozenset(vars(nn.Module()))  # nn.Module's own bookkeeping (hooks, parameter and module tables)
_PLAIN = frozenset({bool, int, float, complex, str, bytes, type(None), torch.dtype, torch.device, torch.layout,
                    torch.memory_format})
_SCALARS = frozenset({bool, int, float, str, type(None)})
_INT = frozenset({int})
_CODE = (types.FunctionType, types.BuiltinFunctionType, type)
_SMALL_BYTES = 4096  # buffers up to this size are compared byte for byte, larger ones by a digest


class _Key:
    """Collects a fingerprint and whether it may be shared between model objects."""

    __slots__ = ("shared",)

    def __init__(self):
        self.shared = True

    def private(self, v) -> tuple:
        """A stand-in valid only while ``v`` lives in this model (its id): the key is no longer shared."""
        self.shared = False
        return ("object", type(v), id(v))

    def token(self, v):
        """A hashable value equal for two attribute values exactly when a trace cannot tell them apart."""
        t = type(v)
        if t in _PLAIN:
            return v if t is str else (t, v)  # (1 == 1.0 == True, but a trace may tell them apart)
        if isinstance(v, (tuple, list)):  # (torch.Size, named tuples: the type is part of the token)
            if set(map(type, v)) <= _INT:  # kernel sizes, strides, paddings: the common case, fast
                return t, tuple(v)
            return t, tuple([self.token(x) for x in v])
        if t in (dict, OrderedDict):
            return t, tuple((self.token(k), self.token(x)) for k, x in v.items())
        if isinstance(v, enum.Enum) or isinstance(v, _CODE):  # values and code: compared by identity
            return v
        if t is functools.partial:
            return t, self.token(v.func), self.token(v.args), self.token(v.keywords)
        if isinstance(v, torch.Tensor) and not isinstance(v, nn.Parameter):
            return self.tensor(v)
        return self.private(v)

    def tensor(self, v: torch.Tensor) -> tuple:
        """Shape, dtype and value (bytes, or a digest of them) of a constant tensor."""
        try:
            data = v.detach().cpu().contiguous().reshape(-1)
            raw = (data.view(torch.uint8) if data.numel() else data.to(torch.uint8)).numpy().tobytes()
        except (RuntimeError, TypeError, NotImplementedError):  # meta, sparse, quantized, ...: no plain bytes
            return self.private(v)
        return tuple(v.shape), v.dtype, raw if len(raw) <= _SMALL_BYTES else hashlib.blake2b(raw).digest()

    def module(self, name: str, m: nn.Module) -> tuple:
        d = m.__dict__
        hooks = ()
        if d["_forward_hooks"] or d["_forward_pre_hooks"]:  # hooks of non-leaf modules run while tracing
            hooks = tuple(self.private(h) for h in (*d["_forward_pre_hooks"].values(), *d["_forward_hooks"].values()))
        token = self.token
        attrs = tuple([(k, type(v), v) if type(v) in _SCALARS else (k, token(v))  # (scalars inline: the common case)
                       for k, v in d.items() if k not in _INTERNAL])
        params = tuple([(k, None if p is None else (p.shape, p.dtype)) for k, p in d["_parameters"].items()])
        stats = isinstance(m, _NormBase)  # running statistics: values a trace never reads
        buffers = tuple([(k, None if b is None else (b.shape, b.dtype) if stats else self.tensor(b))
                         for k, b in d["_buffers"].items()])
        return name, type(m), type(m).forward, hooks, attrs, params, buffers


def fingerprint(model: nn.Module) -> tuple[tuple, bool]:
    """(key, shareable): the model's architecture key, and whether another model object with an equal
    key may reuse its trace (False: the key only identifies this object's current structure)."""
    from torch.nn.modules import module as _module

    key = _Key()
    modules = tuple(key.module(name, m) for name, m in model.named_modules())
    hooks = (*_module._global_forward_pre_hooks.values(), *_module._global_forward_hooks.values())
    return (modules, tuple(key.private(h) for h in hooks)), key.shared


class LRU:
    """At most ``size`` items, the least recently used dropped first."""

    def __init__(self, size: int):
        self.size, self._items = size, OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key):
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
        return hit

    def put(self, key, value) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


class GraphCache:
    """Traced Graphs by fingerprint: per model object (the same Graph again while its fingerprint holds)
    and, for shareable fingerprints, across model objects in a small LRU.

    The LRU keeps its own copy of every Graph and hands out copies, so a caller that changes the Graph
    it got cannot change what another model gets.
    """

    def __init__(self, size: int = 8):
        self._by_model: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()
        self._shared = LRU(size)

    def get(self, model: nn.Module, key, shareable: bool):
        """The cached Graph for ``model`` under ``key``, or None."""
        mine = self._by_model.get(model)
        if mine is not None and mine[0] == key:
            return mine[1]
        graph = self._shared.get(key) if shareable else None
        if graph is None:
            return None
        graph = graph.copy()
        self._by_model[model] = (key, graph)
        return graph

    def put(self, model: nn.Module, key, shareable: bool, graph) -> None:
        self._by_model[model] = (key, graph)
        if shareable:
            self._shared.put(key, graph.copy())

    def clear(self) -> None:
        self._by_model.clear()
        self._shared.clear()
