"""The fast receptive-field walk against the code it replaced, kept here as the reference.

The fast code: short paths for per-unit ops and sliding windows, fields published as the walk goes, shares inside
counted once per whole-number field and in halves, loops for ``_dyadic``, ``_merge_aligned`` and ``_square``, a
stride-1 window's lengths kept in their class. Every changed helper is swapped for its original and the results
must be identical, number by number and type by type (Fractions stay Fractions, ints ints, floats floats): every
LayerField, the Advice, the misalignments and ``to_dict()``. On zoo models, spec nets of every padding, ``layer=``
prefixes, remedies, random traced nets, random hand-built graphs and U-Nets."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torchvision
from hypothesis import HealthCheck, given, settings, strategies as st

from edgewise import geometry, nets, receptive_field, remedies, trace
from edgewise._axis import Flat, Table
from edgewise.geometry import AxisField, LayerField
from edgewise.testing.random_nets import random_net, random_spec
from test_geometry_congruence import _random_graph, _random_net
from test_modern import small
from test_transposed import unet

SETTINGS = settings(derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


# ------------------------------------------------------------------ the slow reference (the code before)

def _slow_walk(graph):
    fields, via, off = {}, {}, {}
    layers, misalignments = [], []
    for nd in graph:
        if nd.kind == "const":
            continue
        axes, misaligned = geometry._axis_fields(graph, nd, fields)
        via[nd.name] = _slow_global_via(graph, nd, via)
        same = nd.inputs and axes is fields.get(nd.inputs[0])
        fields[nd.name] = axes
        if misaligned:
            desc = "; ".join(f"{i}: size {[geometry._num(a.size) for a in fields[i]]}, "
                             f"start {[geometry._num(a.start) for a in fields[i]]}" for i in nd.inputs if i in fields)
            misalignments.append(f"{nd.name} merges receptive fields that do not line up ({desc})")
        off[nd.name] = off[nd.inputs[0]] if same else _slow_fraction_off(axes, graph.input_shape[1:])
        layers.append(LayerField(nd.name, nd.kind, nd.op, nd.shape, axes, len(nd.shape) > 1 or nd.kind == "input",
                                 off[nd.name], geometry._unread(graph, nd), misaligned, via[nd.name]))
    _slow_publish(layers)
    return layers, fields, via, misalignments


def _slow_global_via(graph, nd, via):
    for i in nd.inputs:
        if via.get(i):
            return via[i]
    if nd.kind not in ("linear", "conv", "pool"):
        return None
    if not nd.inputs or graph.positions_behind(nd.inputs[0]) <= 1:  # (a semantic both share: not the speed-up)
        return None
    if nd.kind == "linear":
        return nd.name
    if nd.kind in ("conv", "pool") and nd.axes:
        n_in, n_out = graph.grid(nd.name)
        if all(isinstance(a, geometry.Adaptive) and o == 1 for a, o in zip(nd.axes, n_out)) \
                or geometry._all_to_all(graph, nd):
            return nd.name
    return None


def _slow_publish(layers):
    walk = [layer.axes for layer in layers]
    tuples, fields = {}, {}
    for layer, axes in zip(layers, walk):
        if id(axes) not in tuples:
            for a in axes:
                if id(a) not in fields:
                    size, jump, start = (Fraction(x) if type(x) is int else x for x in (a.size, a.jump, a.start))
                    fields[id(a)] = AxisField(size, jump, start, a.n, a.exact, a.cover, a.per_unit)
            tuples[id(axes)] = tuple(fields[id(a)] for a in axes)
        layer.axes = tuples[id(axes)]


def _slow_through(f, w):
    ext = w.extent
    return AxisField(f.size + (ext - 1) * f.jump, f.jump * w.stride,
                     f.start + (geometry._div(ext - 1, 2) - w.pad[0]) * f.jump, f.n, f.exact, f.cover)


def _slow_through_axis(f, ax, n_in, n):
    if isinstance(ax, geometry.Adaptive) and ax.affine(n_in, n) is not None:
        k = n_in // n
        ax = geometry.Window(k, k)
    if f.per_unit is not None and isinstance(ax, geometry.Window):  # (units' own boxes: a semantic both share)
        return f.through(ax, n)
    if isinstance(ax, geometry.Window):
        g = _slow_through(f, ax)
    elif isinstance(ax, geometry.Transposed):
        g = geometry._through_transposed(f, ax, n_in, n)
    elif isinstance(ax, geometry.Adaptive):
        k = -(-n_in // n) + 1
        g = AxisField(f.size + (k - 1) * f.jump, f.jump * geometry._div(n_in, n),
                      f.start + geometry._div(k - 1, 2) * f.jump, n_in, False)
    else:
        taps = 1 if ax.mode.startswith("nearest") else 4 if ax.mode == "bicubic" else 2
        scale = geometry._div(n_in, n) if ax.scale is None else Fraction(ax.scale).limit_denominator(1000)
        g = AxisField(f.size + (taps - 1) * f.jump, f.jump * scale, f.start, n_in, False)
    return g.with_units(n, f.cover)


def _slow_dyadic(*xs):
    return all(-1 << 20 < x < 1 << 20 if type(x) is int else x.denominator & (x.denominator - 1) == 0
               and x.denominator <= 512 and -x.denominator << 20 < x.numerator < x.denominator << 20 for x in xs)


def _slow_share_inside(a, n_input):
    if a.per_unit is not None or a.jump < 0 or not 0 < a.n < 1 << 20 or not _slow_dyadic(a.size, a.jump, a.start):
        return float(geometry._inside(a, n_input)[0].mean())
    unit = 2 * max(a.size.denominator, a.jump.denominator, a.start.denominator)
    size, jump, start = (x.numerator * (unit // x.denominator) for x in (a.size, a.jump, a.start))
    first = (size - unit) // 2 - start
    last = (n_input - 1) * unit - (size - unit) // 2 - start
    if jump == 0:
        return 1.0 if first <= 0 <= last else 0.0
    return max(0, min(a.n - 1, last // jump) - max(0, -(-first // jump)) + 1) / a.n


def _slow_fraction_off(axes, n_input, seen=None):
    shares = []
    for a, n in zip(axes, n_input):
        shares.append(shares[0] if shares and a is axes[0] and n == n_input[0] else geometry._share_inside(a, n))
    return 1.0 - math.prod(shares)


def _slow_merge_aligned(ops, n):
    jump = ops[0].jump
    if not 1 < n < 1 << 20 or any(o.n != n or o.jump != jump or o.per_unit is not None for o in ops) or not _slow_dyadic(
            jump, *(x for o in ops for x in (o.size, o.start))):
        return None
    lo = min(o.start - geometry._div(o.size - 1, 2) for o in ops)
    hi = max(o.start + geometry._div(o.size - 1, 2) for o in ops)
    centre = geometry._div(lo + hi, 2)
    if not _slow_dyadic(hi - lo + 1, centre):
        return None
    return AxisField(hi - lo + 1, jump, centre, n, all(o.exact for o in ops),
                     (min(o.cover[0] for o in ops), max(o.cover[1] for o in ops)))


def _slow_even_lengths(graph, axis, lo, hi):
    if any(nd.kind in ("conv", "pool") and any(isinstance(a, (Table, Flat)) for a in nd.axes) for nd in graph):
        return []
    classes = [geometry._Lengths(1, 0, lo, hi, {})]
    for nd in graph:
        if nd.kind == "const":
            continue
        if nd.kind in ("identity", "select"):
            src = next(i for i in nd.inputs if i in classes[0].f)
            for c in classes:
                c.f[nd.name] = c.f[src]
            continue
        nxt = []
        for c in classes:
            for p, g in geometry._through(c, graph, nd, axis):
                p.f[nd.name] = g
                nxt.append(p)
        classes = nxt
        if not classes:
            return []
    return sorted(n for c in classes for n in c.lengths())


def _slow_through_window(c, f, w):
    a, b, d = f
    span = (a, b + (w.pad[0] + w.pad[1] - w.extent) * d, d)
    if not c.at_least(span, 0) or (w.mode == "reflect" and not c.at_least(f, max(w.pad) + 1)):
        return []
    s, v0, step = w.stride, c.value(span), c.step(span)
    k = s // math.gcd(step, s)
    out = []
    for j in range(k):
        t = (v0 + step * j) % s
        fill = -t % s
        sub = c.sub(k, j) if ((fill < w.extent - w.pad[1]) if w.ceil_mode else t == 0) else None
        if sub is not None and sub.lengths():
            sub.f = dict(sub.f) if out else sub.f
            out.append((sub, geometry._affine(a, span[1] + (fill + s) * d, d * s)))
    return out


def _slow_square(graph):
    return graph.ndim == 2 and all(
        nd.kind == "const" or ((len(nd.shape) == 1 or (len(nd.shape) == 3 and nd.shape[1] == nd.shape[2]))
                               and (not nd.axes or (len(nd.axes) == 2 and nd.axes[0] == nd.axes[1]))) for nd in graph)


SLOW = {"_walk": _slow_walk, "_through_axis": _slow_through_axis, "_share_inside": _slow_share_inside,
        "_dyadic": _slow_dyadic, "_fraction_off": _slow_fraction_off, "_merge_aligned": _slow_merge_aligned,
        "_even_lengths": _slow_even_lengths, "_through_window": _slow_through_window, "_square": _slow_square}


# ------------------------------------------------------------------ the comparison

def _numbers(rf) -> list:
    """Everything a layer holds, each number with its type."""
    typed = lambda xs: [(type(x), x) for x in xs]  # noqa: E731
    return [(l.name, l.kind, l.op, l.shape, typed(x for a in l.axes for x in (a.size, a.jump, a.start)),
             [(a.n, a.exact, typed(a.cover)) for a in l.axes], l.spatial, typed([l.fraction_off]), l.unread,
             l.misaligned, l.global_via, [type(a) for a in l.axes]) for l in rf.layers]


def _advice(rf) -> tuple:
    a = rf.advice
    typed = lambda xs: [(type(x), x) for x in xs]  # noqa: E731
    return (a.uneven, typed(a.center_offset), a.even_input_sizes, a.global_via, typed(a.local_size), a.local_layer,
            a.sentences())


def _run(call, slow: bool):
    with pytest.MonkeyPatch.context() as m:
        for name, fn in SLOW.items() if slow else ():
            m.setattr(geometry, name, fn)
        try:
            return call()
        except Exception as e:  # (a random hand-built graph may have lengths no op gives)
            return e


def _same_as_slow_code(call) -> None:
    fast, slow = _run(call, False), _run(call, True)
    if isinstance(slow, Exception):
        assert (type(fast), str(fast)) == (type(slow), str(slow))
        return
    assert not isinstance(fast, Exception), fast
    assert _numbers(fast) == _numbers(slow)
    assert _advice(fast) == _advice(slow) and fast.misalignments == slow.misalignments
    assert repr(fast.to_dict()) == repr(slow.to_dict())


def _graph(model, shape):
    graph = trace(model, shape)
    return lambda: receptive_field(graph)


def test_the_reference_is_the_slow_code():
    """(So that the comparisons below compare two different computations.)"""
    assert all(getattr(geometry, name) is not fn for name, fn in SLOW.items())


@pytest.mark.parametrize("model, shape", [
    (lambda: torchvision.models.resnet50(), (3, 224, 224)),
    (lambda: torchvision.models.resnet18(), (3, 61, 80)),
    (lambda: torchvision.models.googlenet(aux_logits=False, init_weights=False), (3, 96, 96)),
    (lambda: torchvision.models.densenet121(), (3, 64, 64)),
    (lambda: torchvision.models.inception_v3(aux_logits=False, init_weights=False), (3, 299, 299)),
    (lambda: torchvision.models.mobilenet_v3_small(), (3, 64, 64)),
    (lambda: torchvision.models.efficientnet_b0(), (3, 64, 64)),
    (lambda: torchvision.models.alexnet(), (3, 100, 90)),
    (lambda: small("vit")[0], (3, 32, 32)),
    (lambda: small("swin")[0], (3, 20, 18)),
    (lambda: small("maxvit")[0], (3, 32, 32)),
    (lambda: small("convnext")[0], (3, 32, 32)),
    (lambda: small("shufflenet")[0], (3, 32, 32)),
], ids=["resnet50", "resnet18", "googlenet", "densenet121", "inception_v3", "mobilenet_v3_small", "efficientnet_b0",
        "alexnet", "vit", "swin", "maxvit", "convnext", "shufflenet"])
def test_zoo_equals_the_slow_code(model, shape):
    _same_as_slow_code(_graph(model(), shape))


@pytest.mark.parametrize("layer", ["layer2.1.conv1", "layer3", "layer4.0.downsample.0"])
def test_layer_prefixes_equal_the_slow_code(layer):
    model = torchvision.models.resnet18()
    _same_as_slow_code(lambda: receptive_field(model, (3, 64, 64), layer=layer))


@pytest.mark.parametrize("padding", list(nets.PADDINGS))
@pytest.mark.parametrize("spec", [nets.DEFAULT_SPEC, "conv3/s2, conv5/d2, maxpool3/s2, conv3",
                                  "conv4/s2, avgpool2, conv3/s3, conv1", "conv3, upsample2, conv3"])
@pytest.mark.parametrize("shape", [(1, 37), (2, 33, 40), (1, 32, 32)])
def test_spec_nets_equal_the_slow_code(spec, padding, shape):
    try:
        model = nets.from_spec(spec, shape, padding=padding)
    except Exception:  # (a spec too deep for the shape at this padding)
        return
    _same_as_slow_code(_graph(model, shape))


@pytest.mark.parametrize("remedy", ["reflect", "circular", "partial", "coordconv", "global"])
def test_remedies_equal_the_slow_code(remedy):
    shape = (1, 32, 32)
    _same_as_slow_code(_graph(remedies.apply(nets.from_spec(nets.DEFAULT_SPEC, shape), remedy, input_shape=shape),
                              shape))


@SETTINGS
@given(case=random_net())
def test_random_nets_equal_the_slow_code(case):
    _same_as_slow_code(_graph(case.model, case.input_shape))


@SETTINGS
@given(case=random_spec())
def test_random_specs_equal_the_slow_code(case):
    _same_as_slow_code(_graph(case.build(), case.input_shape))


@settings(SETTINGS, max_examples=60)
@given(seed=st.integers(0, 10 ** 6), d=st.sampled_from([1, 2]))
def test_random_stacks_equal_the_slow_code(seed, d):
    made = _random_net(seed, d)
    if made is not None:
        _same_as_slow_code(_graph(*made))


@settings(SETTINGS, max_examples=80)
@given(seed=st.integers(0, 10 ** 6))
def test_random_graphs_equal_the_slow_code(seed):
    graph = _random_graph(seed)
    _same_as_slow_code(lambda: receptive_field(graph))


@settings(SETTINGS, max_examples=30)
@given(case=unet())
def test_unets_equal_the_slow_code(case):
    _same_as_slow_code(_graph(*case))


def test_the_short_paths_are_taken(monkeypatch):
    """Per-unit ops and sliding windows, most of a ResNet, never reach the general per-node code."""
    general = []
    slow = geometry._axis_fields
    monkeypatch.setattr(geometry, "_axis_fields", lambda graph, nd, fields: general.append(nd.kind) or
                        slow(graph, nd, fields))
    graph = trace(torchvision.models.resnet18(), (3, 64, 64))
    receptive_field(graph)
    assert sorted(general) == sorted(["input", "pool", "reshape", "linear"] + ["add"] * 8)  # avgpool: adaptive
