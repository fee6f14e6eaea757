"""The fast architecture fingerprint against the one it replaced (kept here as the reference).

Two models get equal fast fingerprints exactly when they got equal reference fingerprints, and
the same ones are shareable: on random nets, on zoo models, and after every change a trace could
tell apart (another value, an equal value of another type, a list for a tuple, a patched forward).
"""

from __future__ import annotations

import copy
import enum
import functools
import hashlib
import types
from collections import OrderedDict

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.nn.modules.batchnorm import _NormBase

import edgewise
from edgewise import _fingerprint
from edgewise._fingerprint import Fingerprint, fingerprint
from edgewise.testing.random_nets import random_net

SETTINGS = settings(derandomize=True, max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


# ------------------------------------------------------------ the reference (the fingerprint before)

_INTERNAL = frozenset(vars(nn.Module()))
_PLAIN = frozenset({bool, int, float, complex, str, bytes, type(None), torch.dtype, torch.device, torch.layout,
                    torch.memory_format})
_SCALARS = frozenset({bool, int, float, str, type(None)})
_CODE = (types.FunctionType, types.BuiltinFunctionType, type)


class _RefKey:
    def __init__(self):
        self.shared = True

    def private(self, v):
        self.shared = False
        return ("object", type(v), id(v))

    def token(self, v):
        t = type(v)
        if t in _PLAIN:
            return v if t is str else (t, v)
        if isinstance(v, (tuple, list)):
            if set(map(type, v)) <= {int}:
                return t, tuple(v)
            return t, tuple([self.token(x) for x in v])
        if t in (dict, OrderedDict):
            return t, tuple((self.token(k), self.token(x)) for k, x in v.items())
        if isinstance(v, enum.Enum) or isinstance(v, _CODE):
            return v
        if t is functools.partial:
            return t, self.token(v.func), self.token(v.args), self.token(v.keywords)
        if isinstance(v, torch.Tensor) and not isinstance(v, nn.Parameter):
            return self.tensor(v)
        return self.private(v)

    def tensor(self, v):
        try:
            data = v.detach().cpu().contiguous().reshape(-1)
            raw = (data.view(torch.uint8) if data.numel() else data.to(torch.uint8)).numpy().tobytes()
        except (RuntimeError, TypeError, NotImplementedError):
            return self.private(v)
        return tuple(v.shape), v.dtype, raw if len(raw) <= 4096 else hashlib.blake2b(raw).digest()

    def module(self, name, m):
        d = m.__dict__
        hooks = ()
        if d["_forward_hooks"] or d["_forward_pre_hooks"]:
            hooks = tuple(self.private(h) for h in (*d["_forward_pre_hooks"].values(), *d["_forward_hooks"].values()))
        attrs = tuple([(k, type(v), v) if type(v) in _SCALARS else (k, self.token(v))
                       for k, v in d.items() if k not in _INTERNAL])
        params = tuple([(k, None if p is None else (p.shape, p.dtype)) for k, p in d["_parameters"].items()])
        stats = isinstance(m, _NormBase)
        buffers = tuple([(k, None if b is None else (b.shape, b.dtype) if stats else self.tensor(b))
                         for k, b in d["_buffers"].items()])
        return name, type(m), type(m).forward, hooks, attrs, params, buffers


def reference(model):
    from torch.nn.modules import module as _module

    key = _RefKey()
    modules = tuple(key.module(name, m) for name, m in model.named_modules())
    hooks = (*_module._global_forward_pre_hooks.values(), *_module._global_forward_hooks.values())
    return (modules, tuple(key.private(h) for h in hooks)), key.shared


def same_relation(a, b):
    """Fast and reference fingerprints agree on whether ``a`` and ``b`` share an architecture."""
    (fa, sa), (fb, sb) = fingerprint(a), fingerprint(b)
    (ra, qa), (rb, qb) = reference(a), reference(b)
    assert (sa, sb) == (qa, qb)
    assert (fa == fb) == (ra == rb)
    assert (hash(fa) == hash(fb)) or fa != fb
    return fa == fb


# ------------------------------------------------------------ changes

def _other_values(v):
    """Values a trace can tell apart from ``v``: another value, and equal ones of another type."""
    t = type(v)
    if t is bool:
        return [not v, int(v)]
    if t is int:
        return [v + 1, float(v), bool(v) if v in (0, 1) else -v]
    if t is float:
        return [v * 2 + 1, int(v) if v == int(v) else v / 2]
    if t is str:
        return [v + "x"]
    if t in (tuple, list) and v and all(type(x) is int for x in v):
        return [t([v[0] + 1, *v[1:]]), t([float(v[0]), *v[1:]]), list(v) if t is tuple else tuple(v)]
    return []


def _changes(model):
    """(description, function changing a copy) for every plain attribute of every module."""
    out = []
    for name, m in model.named_modules():
        for k, v in vars(m).items():
            if k in _INTERNAL:
                continue
            for new in _other_values(v):
                out.append((f"{name}.{k}={new!r}", lambda c, name=name, k=k, new=new:
                            setattr(c.get_submodule(name), k, new)))
    return out


@SETTINGS
@given(random_net(), st.randoms(use_true_random=False))
def test_random_nets_get_the_reference_relation_before_and_after_a_change(case, rnd):
    model = case.model
    twin = copy.deepcopy(model)
    assert same_relation(model, twin)
    changes = _changes(model)
    for what, change in rnd.sample(changes, min(6, len(changes))):
        other = copy.deepcopy(model)
        change(other)
        assert not same_relation(model, other), what


class Block(nn.Module):
    def __init__(self, k=3, growth=4):
        super().__init__()
        self.conv = nn.Conv2d(2, growth, k, padding=k // 2)
        self.act = nn.ReLU()

    def forward(self, x):
        return torch.cat([x, self.act(self.conv(x))], 1)


def test_densenets_of_other_growth_rates_or_block_sizes_differ():
    torchvision = pytest.importorskip("torchvision")
    kw = dict(num_init_features=8, block_config=(2, 2), bn_size=2)
    a, b = (torchvision.models.DenseNet(growth_rate=g, **kw) for g in (4, 4))
    assert same_relation(a, b)
    assert not same_relation(a, torchvision.models.DenseNet(growth_rate=6, **kw))
    assert not same_relation(a, torchvision.models.DenseNet(growth_rate=4, num_init_features=8, block_config=(2, 3),
                                                             bn_size=2))
    assert not same_relation(a, torchvision.models.DenseNet(growth_rate=4, drop_rate=0.5, **kw))


def test_a_changed_kernel_size_or_a_patched_forward_differs():
    assert same_relation(Block(), Block())
    assert not same_relation(Block(3), Block(5))

    class Patched(Block):
        pass

    a, b = Patched(), Patched()
    before = fingerprint(a)[0]
    Patched.forward = lambda self, x: self.act(self.conv(x))
    assert fingerprint(a)[0] != before and fingerprint(a)[0] == fingerprint(b)[0]
    b.forward = types.MethodType(lambda self, x: x, b)  # on the instance: private to it
    assert not fingerprint(b)[1] and not same_relation(a, b)


@pytest.mark.parametrize("a, b", [
    ((1, 1), (1.0, 1)), ((1, 1), (True, 1)), ((1, 2), [1, 2]), (1, True), (1, 1.0), (0.5, "0.5"),
    ((1, 2), torch.Size([1, 2])), ((1, (2,)), (1, (2.0,))), ([1, "a"], [1, "b"]), ({"a": 1}, {"a": 1.0}),
    ((), []), (None, 0), (torch.float32, torch.float64),
])
def test_equal_values_of_other_types_differ(a, b):
    x, y = Block(), Block()
    x.conv.extra, y.conv.extra = a, b
    assert not same_relation(x, y)
    z = Block()
    z.conv.extra = copy.deepcopy(a)
    assert same_relation(x, z)


def test_attribute_names_and_their_order_count_but_not_their_insertion_elsewhere():
    x, y = Block(), Block()
    x.conv.a, x.conv.b = 1, 2
    y.conv.b, y.conv.a = 2, 1
    assert same_relation(x, y) == (reference(x)[0] == reference(y)[0])
    y.conv.c = 3
    assert not same_relation(x, y)


def test_opaque_values_nested_values_and_buffers_as_before():
    x, y = Block(), Block()
    for m in (x, y):
        m.conv.helper = [1, (2, "a"), None, F.relu, functools.partial(F.pad, pad=(1, 1))]
        m.register_buffer("index", torch.arange(4))
    same_relation(x, y)  # (the partials differ by identity, as in the reference)
    x.conv.helper = y.conv.helper = [1, (2, "a"), None, F.relu]
    assert same_relation(x, y) and fingerprint(x)[1]
    y.index = torch.arange(4).flip(0)
    assert not same_relation(x, y)
    y.index = torch.arange(4)
    x.conv.opaque = object()
    assert not fingerprint(x)[1] and not same_relation(x, y)


def test_shared_submodules_and_empty_slots_walk_as_named_modules():
    shared = nn.ReLU()
    model = nn.Sequential(nn.Conv2d(1, 1, 1), shared, nn.Sequential(shared, nn.Conv2d(1, 1, 1)))
    model.register_module("gap", None)
    assert [n for n, _ in _fingerprint._named_modules(model)] == [n for n, _ in model.named_modules()]
    twin = nn.Sequential(nn.Conv2d(1, 1, 1), nn.ReLU(), nn.Sequential(nn.ReLU(), nn.Conv2d(1, 1, 1)))
    twin.register_module("gap", None)
    assert not same_relation(model, twin)


@pytest.mark.parametrize("name", ["resnet18", "densenet121", "mobilenet_v3_small", "squeezenet1_1"])
def test_zoo_models_share_with_copies_and_differ_from_each_other(name):
    torchvision = pytest.importorskip("torchvision")
    a = torchvision.models.get_model(name, weights=None)
    assert same_relation(a, torchvision.models.get_model(name, weights=None))
    assert not same_relation(a, torchvision.models.get_model("resnet34", weights=None))


def test_the_key_hashes_once_and_compares_by_value():
    k1, k2 = fingerprint(Block())[0], fingerprint(Block())[0]
    assert isinstance(k1, Fingerprint) and k1 == k2 and hash(k1) == hash(k2) and k1 is not k2
    assert k1 != k1.key and k1 != fingerprint(Block(5))[0]
    assert {k1: 1}[k2] == 1


def test_the_tables_kept_per_class_and_per_types_stay_bounded(monkeypatch):
    monkeypatch.setattr(_fingerprint, "_BOUND", 3)
    monkeypatch.setattr(_fingerprint, "_LAYOUTS", {})
    monkeypatch.setattr(_fingerprint, "_SEQUENCES", {})
    for k, v in enumerate([1, 1.0, "a", (1,), [1], None, b"x"]):
        act = type(f"Act{k}", (nn.ReLU,), {})()
        act.extra = v
        fingerprint(nn.Sequential(act))
    assert len(_fingerprint._LAYOUTS) <= 3 and len(_fingerprint._SEQUENCES) <= 3
    assert edgewise.trace(nn.Sequential(nn.Conv1d(1, 1, 3)), (1, 9)).output == "0"
