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

It is built for speed (a warm trace is little more than the fingerprint): the
attribute names a class's instances compare are found once per class, values
that are scalars or flat sequences of ints (nearly all hyper-parameters) go into
the key as they are, next to their types, and only the rest are turned into
tokens one by one; the key is hashed once (:class:`Fingerprint`).
"""

from __future__ import annotations

import enum
import functools
import hashlib
import operator
import types
import weakref
from collections import OrderedDict
from itertools import chain

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _NormBase

__all__ = ["fingerprint", "Fingerprint", "GraphCache", "LRU"]

_INTERNAL = frozenset(vars(nn.Module()))  # nn.Module's own bookkeeping (hooks, parameter and module tables)
_PLAIN = frozenset({bool, int, float, complex, str, bytes, type(None), torch.dtype, torch.device, torch.layout,
                    torch.memory_format})
_INT = frozenset({int})
_FLAT = frozenset({tuple, list, torch.Size})  # sequences whose values the fast path compares (lists as tuples)
_CODE = (types.FunctionType, types.BuiltinFunctionType, type)
_SMALL_BYTES = 4096  # buffers up to this size are compared byte for byte, larger ones by a digest
_BOUND = 4096  # entries of the per-class and per-types tables below (cleared when full)
_LAYOUTS: dict = {}  # module class -> _layout(...)
_SEQUENCES: dict = {}  # tuple of attribute types -> (that tuple, _sequences(...))


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

    def attrs(self, values: tuple) -> tuple:
        """The plain attributes' values: (their types, the values) where every value is a scalar or a flat
        sequence of ints (a list as a tuple), the common case; else (None, a token per value)."""
        types = tuple(map(type, values))
        hit = _SEQUENCES.get(types)
        if hit is None:
            hit = _sequences(types)
        types, seqs, lists = hit  # (the types tuple kept in the table: a key holds one per kind of module)
        if seqs is False or seqs and not _INT.issuperset(map(type, chain.from_iterable(seqs(values)))):
            return None, tuple([self.token(v) for v in values])
        if lists:
            values = tuple([tuple(v) if type(v) is list else v for v in values])
        return types, values

    def module(self, name: str, m: nn.Module, out: list) -> None:
        """Append everything of module ``name`` a trace depends on to the flat key ``out`` (its children are
        their own entries). Each entry's length follows from values before it (the class's attribute names, the
        counts and tensor ranks), so equal keys are equal architectures; nothing but tokens that are not plain
        values is made per module, so a key adds one object for the garbage collector to track, not dozens."""
        d = m.__dict__
        cls = type(m)
        layout = _LAYOUTS.get(cls)
        names = tuple(d)
        if layout is None or layout[0] != names:
            layout = _layout(cls, names)
        _, compared, values, stats = layout
        hooks = _NO_HOOKS
        if d["_forward_hooks"] or d["_forward_pre_hooks"]:  # hooks of non-leaf modules run while tracing
            hooks = tuple(self.private(h) for h in (*d["_forward_pre_hooks"].values(), *d["_forward_hooks"].values()))
        types, vals = self.attrs(values(d))
        out += (name, cls, cls.forward, hooks, compared, types)
        out += vals
        p, b = d["_parameters"], d["_buffers"]
        out.append(len(p))
        out += p
        for v in p.values():
            if v is None:
                out.append(None)
            else:
                out += (v.dtype, v.shape)  # (_tensor_shape, inline: most tensors are parameters)
        out.append(len(b))
        if b:
            out += b
            for v in b.values():
                if stats or v is None:
                    _tensor_shape(v, out)
                else:
                    out.append(self.tensor(v))


_NO_HOOKS = ()


def _tensor_shape(v, out: list) -> None:
    """Append None, or a tensor's dtype and shape (a ``torch.Size``: one entry, compared as a tuple), to a flat
    key."""
    if v is None:
        out.append(None)
    else:
        out += (v.dtype, v.shape)


def _layout(cls: type, names: tuple) -> tuple:
    """(attribute names, the compared ones, a getter of their values, whether the buffers are normalisation
    statistics) for a module class whose instance dict has ``names``; kept per class."""
    compared = tuple(k for k in names if k not in _INTERNAL)
    if len(compared) > 1:
        values = operator.itemgetter(*compared)
    else:
        values = (lambda d, k=compared[0]: (d[k],)) if compared else (lambda d: ())
    if len(_LAYOUTS) >= _BOUND:
        _LAYOUTS.clear()
    _LAYOUTS[cls] = layout = names, compared, values, issubclass(cls, _NormBase)
    return layout


def _sequences(types: tuple):
    """For attribute values of ``types``: (``types``, a getter of the sequences among them ((): none) or False if
    some value is neither a scalar nor a tuple, list or Size, whether one is a list); kept per tuple of types."""
    where = [i for i, t in enumerate(types) if t in _FLAT]
    seqs = False if not all(t in _PLAIN or t in _FLAT for t in types) else \
        operator.itemgetter(*where) if len(where) > 1 else (lambda v, i=where[0]: (v[i],)) if where else ()
    if len(_SEQUENCES) >= _BOUND:
        _SEQUENCES.clear()
    hit = _SEQUENCES[types] = types, seqs, list in types
    return hit


def _named_modules(model: nn.Module) -> list:
    """``list(model.named_modules())``, walked with a stack instead of nested generators."""
    out, seen, stack = [], set(), [("", model)]
    while stack:
        name, m = stack.pop()
        if id(m) in seen:
            continue
        seen.add(id(m))
        out.append((name, m))
        children = m.__dict__["_modules"]
        if children:
            prefix = name + "." if name else ""
            stack.extend([(prefix + k, c) for k, c in reversed(children.items()) if c is not None])
    return out


def fingerprint(model: nn.Module, named: list | None = None) -> tuple[tuple, bool]:
    """(key, shareable): the model's architecture key, and whether another model object with an equal
    key may reuse its trace (False: the key only identifies this object's current structure);
    ``named``: ``_named_modules(model)`` where the caller has it."""
    from torch.nn.modules import module as _module

    key, out = _Key(), []
    named = named or _named_modules(model)
    for name, m in named:
        key.module(name, m, out)
    hooks = (*_module._global_forward_pre_hooks.values(), *_module._global_forward_hooks.values())
    out.append(tuple(key.private(h) for h in hooks))
    return Fingerprint(tuple(out), len(named)), key.shared


class Fingerprint:
    """An architecture key: a flat tuple (see :meth:`_Key.module`), hashed once (every cache lookup would hash it
    again); ``modules``: how many modules it describes."""

    __slots__ = ("key", "_hash", "modules")

    def __init__(self, key: tuple, modules: int = 0):
        self.key, self._hash, self.modules = key, hash(key), modules

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        return self is other or type(other) is Fingerprint and self._hash == other._hash and self.key == other.key

    def __repr__(self) -> str:
        return f"Fingerprint({self.modules} modules, hash {self._hash:#x})"


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
    """Traced Graphs (or any value worked out from an architecture alone) by fingerprint: per model object
    (the same value again while its fingerprint holds) and, for shareable fingerprints, across model objects
    in a small LRU.

    The LRU keeps its own copy of every Graph and hands out copies, so a caller that changes the Graph
    it got cannot change what another model gets (``copy``: how a value is copied; None for immutable ones).
    """

    def __init__(self, size: int = 8, copy=lambda value: value.copy()):
        self._by_model: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()
        self._shared = LRU(size)
        self._copy = copy or (lambda value: value)

    def get(self, model: nn.Module, key, shareable: bool):
        """The cached Graph for ``model`` under ``key``, or None."""
        mine = self._by_model.get(model)
        if mine is not None and mine[0] == key:
            return mine[1]
        graph = self._shared.get(key) if shareable else None
        if graph is None:
            return None
        graph = self._copy(graph)
        self._by_model[model] = (key, graph)
        return graph

    def put(self, model: nn.Module, key, shareable: bool, graph) -> None:
        self._by_model[model] = (key, graph)
        if shareable:
            self._shared.put(key, self._copy(graph))

    def clear(self) -> None:
        self._by_model.clear()
        self._shared.clear()
