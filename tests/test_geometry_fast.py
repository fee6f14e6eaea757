"""The field walk keeps whole numbers as ints (a Fraction only where a value is not whole), then hands out
Fractions: the same results, number by number and type by type, as the walk with Fractions everywhere (the
code before), kept here as the reference by making every field it builds hold Fractions. On zoo models,
random traced nets, random hand-built graphs (transposed, adaptive, resampled, reflect, ceil_mode) and
U-Nets."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import pytest
import torchvision
from hypothesis import given, settings, strategies as st

from edgewise import geometry, receptive_field, trace
from edgewise.geometry import AxisField, _div
from edgewise.testing.random_nets import random_net
from test_geometry_congruence import _random_graph, _random_net
from test_modern import small
from test_transposed import unet


@dataclass(frozen=True)
class _Fractions(AxisField):
    """An AxisField whose whole numbers are Fractions from the start, as every field was before."""

    def __post_init__(self):
        for name in ("size", "jump", "start"):
            if type(getattr(self, name)) is int:
                object.__setattr__(self, name, Fraction(getattr(self, name)))


def _numbers(rf) -> list:
    """Every number of every layer's fields with its type, and what else a field holds."""
    return [(l.name, [(type(x), x) for a in l.axes for x in (a.size, a.jump, a.start)],
             [(a.n, a.exact, a.cover) for a in l.axes]) for l in rf.layers]


def _fields(graph, fractions: bool):
    """receptive_field of ``graph``, or the error it raised; ``fractions``: as before, every number a Fraction."""
    with pytest.MonkeyPatch.context() as m:
        if fractions:
            m.setattr(geometry, "AxisField", _Fractions)
        try:
            return receptive_field(graph)
        except Exception as e:  # (a random hand-built graph may have lengths no op gives)
            return e


def _same_as_fraction_code(graph) -> None:
    fast, slow = _fields(graph, False), _fields(graph, True)
    if isinstance(slow, Exception):
        assert (type(fast), str(fast)) == (type(slow), str(slow))
        return
    assert not isinstance(fast, Exception), fast
    assert all(t is Fraction for _, xs, _ in _numbers(slow) for t, _ in xs)  # the reference is all Fractions
    assert _numbers(fast) == _numbers(slow)  # equal numbers of one type: a float or an int would differ
    assert repr(fast.to_dict()) == repr(slow.to_dict())
    assert fast.advice == slow.advice and fast.misalignments == slow.misalignments
    assert all(type(a) is AxisField for l in fast.layers for a in l.axes)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(x=st.one_of(st.integers(-10 ** 6, 10 ** 6), st.fractions(max_denominator=64)), k=st.integers(1, 12))
def test_div_is_exact_and_keeps_ints_whole(x, k):
    q = _div(x, k)
    assert q == Fraction(x) / k
    assert type(q) is (int if type(x) is int and x % k == 0 else Fraction)


def test_div_of_a_float_stays_a_float():
    assert _div(0.5, 2) == 0.25 and type(_div(0.5, 2)) is float


def test_the_walk_runs_on_ints_where_whole():
    """(So that the comparisons below compare two different computations.)"""
    graph = trace(torchvision.models.resnet18(), (3, 64, 64))
    fields = {}
    for nd in graph:
        if nd.kind != "const":
            fields[nd.name] = geometry._axis_fields(graph, nd, fields)[0]
    head = ("avgpool", "flatten", "fc")  # the global pool's uneven-window rule halves: Fraction(16, 1) and on
    assert all(type(x) is int for name, axes in fields.items() if name not in head
               for a in axes for x in (a.size, a.jump, a.start))


@pytest.mark.parametrize("model, shape", [
    (lambda: torchvision.models.resnet50(), (3, 224, 224)),
    (lambda: torchvision.models.resnet18(), (3, 61, 80)),
    (lambda: torchvision.models.densenet121(), (3, 64, 64)),
    (lambda: torchvision.models.googlenet(aux_logits=False, init_weights=False), (3, 64, 64)),
    (lambda: torchvision.models.mobilenet_v3_small(), (3, 64, 64)),
    (lambda: torchvision.models.alexnet(), (3, 100, 90)),
    (lambda: torchvision.models.vit_b_16(image_size=64), (3, 64, 64)),
    (lambda: small("swin")[0], (3, 20, 18)),
    (lambda: small("maxvit")[0], (3, 32, 32)),
    (lambda: small("shufflenet")[0], (3, 32, 32)),
], ids=["resnet50", "resnet18", "densenet121", "googlenet", "mobilenet_v3_small", "alexnet", "vit_b_16", "swin",
        "maxvit", "shufflenet"])
def test_zoo_fields_equal_the_fraction_code(model, shape):
    _same_as_fraction_code(trace(model(), shape))


@settings(derandomize=True, max_examples=60, deadline=None)
@given(seed=st.integers(0, 10 ** 6), d=st.sampled_from([1, 2]))
def test_random_stacks_equal_the_fraction_code(seed, d):
    made = _random_net(seed, d)
    if made is not None:
        _same_as_fraction_code(trace(*made))


@settings(derandomize=True, max_examples=60, deadline=None)
@given(case=random_net())
def test_random_nets_equal_the_fraction_code(case):
    _same_as_fraction_code(trace(case.model, case.input_shape))


@settings(derandomize=True, max_examples=80, deadline=None)
@given(seed=st.integers(0, 10 ** 6))
def test_random_graphs_equal_the_fraction_code(seed):
    _same_as_fraction_code(_random_graph(seed))


@settings(derandomize=True, max_examples=30, deadline=None)
@given(case=unet())
def test_unets_equal_the_fraction_code(case):
    _same_as_fraction_code(trace(*case))
