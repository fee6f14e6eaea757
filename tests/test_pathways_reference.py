"""edgewise.pathways against the brute-force reference on random small nets, plus hand-checked cases.

The reference (:mod:`edgewise.testing.brute`) is itself checked against torch:
on nets that are linear with all weights 1 the gradient of the summed outputs
is the path count, and single pooling/interpolation layers are probed for
which inputs each output reads.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import edgewise
from edgewise.nets import PADDINGS, from_spec
from edgewise.testing import assert_close_rel, brute_pathways, unit_dag
from edgewise.testing.random_nets import LINEAR_BLOCKS, random_net, random_spec, ones_

SETTINGS = settings(derandomize=True, max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


def exact(model, shape=None, **kw) -> np.ndarray:
    return edgewise.pathways(model, shape, exact=True, **kw).counts


def assert_same(actual, expected, what=""):
    actual, expected = np.asarray(actual, dtype=object), np.asarray(expected, dtype=object)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.tolist() == expected.tolist(), f"{what}:\nengine {actual.tolist()}\nbrute  {expected.tolist()}"


def unit_weight_gradient(model: nn.Module, shape) -> np.ndarray:
    """d(sum of outputs)/d(input channel 0) of a linear net with all weights 1: its path counts."""
    model = ones_(model).double().eval()
    x = torch.zeros((1, *shape), dtype=torch.float64, requires_grad=True)
    model(x).sum().backward()
    return np.rint(x.grad[0, 0].numpy()).astype(np.int64)


# ------------------------------------------------------------ random nets vs the reference

@SETTINGS
@given(random_net(), st.data())
def test_exact_matches_brute_for_every_selector(case, data):
    graph = edgewise.trace(case.model, case.input_shape)
    out = graph[graph.output]
    assert_same(exact(graph, to="all"), brute_pathways(graph, to="all"), f"to='all' {case.blocks}")
    assert_same(exact(graph, to="center"), brute_pathways(graph, to="center"), f"to='center' {case.blocks}")
    if out.spatial:
        pos = tuple(data.draw(st.integers(0, n - 1), label=f"axis {a}") for a, n in enumerate(out.spatial))
        to = pos[0] if len(pos) == 1 and data.draw(st.booleans(), label="int position") else pos
        assert_same(exact(graph, to=to), brute_pathways(graph, to=to), f"to={to} {case.blocks}")


@SETTINGS
@given(random_net(), st.data())
def test_exact_matches_brute_at_an_intermediate_layer(case, data):
    graph = edgewise.trace(case.model, case.input_shape)
    names = [n.name for n in graph if n.kind not in ("input", "const") and graph.input in graph.upstream(n.name)]
    layer = data.draw(st.sampled_from(names), label="layer")
    spatial = graph[layer].spatial
    to = data.draw(st.sampled_from(["all", "center", "position"] if spatial else ["all", "center"]), label="to")
    if to == "position":
        to = tuple(data.draw(st.integers(0, n - 1), label=f"axis {a}") for a, n in enumerate(spatial))
    assert_same(exact(graph, to=to, layer=layer), brute_pathways(graph, to=to, layer=layer),
                f"layer={layer!r} to={to} {case.blocks}")


@SETTINGS
@given(random_net(), st.sampled_from(["all", "center"]))
def test_float_mode_within_1e9_of_exact(case, to):
    graph = edgewise.trace(case.model, case.input_shape)
    p = edgewise.pathways(graph, to=to, exact=False)
    assert p.scale == 0
    expected = brute_pathways(graph, to=to)
    assert_close_rel(p.counts, expected, torch.float64)
    assert np.array_equal(np.isfinite(p.log10), expected != 0)


@pytest.mark.parametrize("padding", list(PADDINGS))
@settings(SETTINGS, max_examples=12)
@given(data=st.data())
def test_spec_nets_match_brute(padding, data):
    case = data.draw(random_spec(paddings=(padding,)), label="spec")
    graph = edgewise.trace(case.build(), case.input_shape)
    for to in ("all", "center"):
        assert_same(exact(graph, to=to), brute_pathways(graph, to=to), f"{case} to={to}")
    assert_close_rel(edgewise.pathways(graph, exact=False).counts, brute_pathways(graph), torch.float64)


def test_float_mode_beyond_float64_range():
    # up to 40**220 ≈ 1e352 paths per input: float mode must factor out a power of ten and stay within 1e-9
    net = from_spec("220*conv5", (1, 6), padding="same", width=8, activation=None)
    graph = edgewise.trace(net, (1, 6))
    p = edgewise.pathways(graph, exact=False)
    ref = brute_pathways(graph)
    assert p.scale > 0 and max(ref.tolist()) > 10 ** 308
    assert_close_rel(p.counts, np.array([v // 10 ** p.scale for v in ref.tolist()], dtype=object),
                     torch.float64)
    assert_same(exact(graph), ref, "220*conv5")


# ------------------------------------------------------------ the reference against torch itself

@SETTINGS
@given(random_net(kinds=LINEAR_BLOCKS, linear=True))
def test_reference_is_the_gradient_of_unit_weight_linear_nets(case):
    """Independent of the tracer's and the engine's arithmetic: all-ones linear nets count paths."""
    assert_same(brute_pathways(case.model, case.input_shape), unit_weight_gradient(case.model, case.input_shape),
                f"{case.blocks}")


@SETTINGS
@given(random_spec())
def test_reference_is_the_gradient_of_unit_weight_spec_nets(case):
    if "pool" in case.spec or "gap" in case.spec:
        return  # not linear with unit weights
    net = case.build(activation=None)
    assert_same(brute_pathways(net, case.input_shape), unit_weight_gradient(net, case.input_shape), case.spec)


def _reads(module, shape) -> np.ndarray:
    """R[o, i] = 1 where output position o (channel 0) of ``module`` depends on input position i, probed in torch."""
    module = module.double().eval()
    spatial = shape[1:]
    if "Max" in type(module).__name__:  # max: does a lone maximum at i reach output o?
        cols = []
        for i in np.ndindex(*spatial):
            x = -torch.ones((1, *shape), dtype=torch.float64)
            x[(0, slice(None), *i)] = 1.0
            cols.append((module(x)[0, 0] == 1.0).reshape(-1).numpy())
        return np.stack(cols, axis=1).astype(np.int64)
    # linear: a non-zero Jacobian entry
    x = torch.zeros((1, *shape), dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda t: module(t)[0, 0].reshape(-1), x)[:, 0, 0]
    return (jac.reshape(jac.shape[0], -1) != 0).numpy().astype(np.int64)


def _brute_reads(module, shape) -> np.ndarray:
    graph = edgewise.trace(module, shape)
    out = graph[graph.output]
    dag = unit_dag(graph)
    inputs = list(np.ndindex(*shape[1:]))
    reads = np.zeros((int(np.prod(out.spatial)), len(inputs)), dtype=np.int64)
    for o, pos in enumerate(np.ndindex(*out.spatial)):
        for src in dag[(out.name, 0, *pos)]:
            reads[o, inputs.index(tuple(src[2:]))] = 1
    return reads


@st.composite
def _pooling_layer(draw):
    ndim = draw(st.sampled_from([1, 2]))
    kind = draw(st.sampled_from(["max", "avg"] * 2 + ["adaptive_avg", "adaptive_max", "nearest", "nearest-exact",
                                                       "linear"]))
    k = draw(st.integers(2, 4)) if kind in ("max", "avg") else 1
    spatial = tuple(draw(st.integers(k, 9)) for _ in range(ndim))
    n = min(spatial)
    if kind in ("max", "avg"):
        ceil = draw(st.booleans())
        s, p = draw(st.integers(2 if ceil else 1, 3)), draw(st.integers(0, k // 2))  # ceil_mode matters with s > 1
        if kind == "max":
            d = draw(st.integers(1, 2)) if 2 * (k - 1) + 1 <= n + 2 * p else 1
            m = (nn.MaxPool1d if ndim == 1 else nn.MaxPool2d)(k, s, p, dilation=d, ceil_mode=ceil)
        else:
            m = (nn.AvgPool1d if ndim == 1 else nn.AvgPool2d)(k, s, p, ceil_mode=ceil,
                                                              count_include_pad=draw(st.booleans()))
    elif kind.startswith("adaptive"):
        out = tuple(draw(st.integers(1, 10)) for _ in spatial)
        cls = {("adaptive_avg", 1): nn.AdaptiveAvgPool1d, ("adaptive_avg", 2): nn.AdaptiveAvgPool2d,
               ("adaptive_max", 1): nn.AdaptiveMaxPool1d, ("adaptive_max", 2): nn.AdaptiveMaxPool2d}[kind, ndim]
        m = cls(out[0] if ndim == 1 else out)
    else:
        mode = "bilinear" if kind == "linear" and ndim == 2 else kind
        align = draw(st.booleans()) if kind == "linear" else None
        if draw(st.booleans()):
            scales = [0.5, 1.5, 2.0, 2.5, 3.0] if n >= 2 else [1.5, 2.0, 2.5, 3.0]
            m = nn.Upsample(scale_factor=draw(st.sampled_from(scales)), mode=mode,
                            align_corners=align)
        else:
            size = tuple(draw(st.integers(1, 12)) for _ in spatial)
            m = nn.Upsample(size=size[0] if ndim == 1 else size, mode=mode, align_corners=align)
    return m, (draw(st.integers(1, 2)), *spatial)


@settings(derandomize=True, max_examples=80, deadline=None)
@given(_pooling_layer())
def test_reference_reads_what_torch_reads_in_pooling_and_interpolation(layer):
    module, shape = layer
    assert np.array_equal(_brute_reads(module, shape), _reads(module, shape)), module


# ------------------------------------------------------------ hand-checked cases

def test_pascal_triangle_1d():
    net = from_spec("4*conv3", (1, 9), padding="valid", width=1)
    assert exact(net, (1, 9)).tolist() == [1, 4, 10, 16, 19, 16, 10, 4, 1]
    assert brute_pathways(net, (1, 9)).tolist() == [1, 4, 10, 16, 19, 16, 10, 4, 1]


def test_goodfellow_fig_9_13():
    # three 6-tap valid convolutions on 16 inputs: coefficients of (1 + x + ... + x^5)^3
    expected = [1, 3, 6, 10, 15, 21, 25, 27, 27, 25, 21, 15, 10, 6, 3, 1]
    net = from_spec("3*conv6", (1, 16), padding="valid", width=1)
    assert exact(net, (1, 16)).tolist() == expected
    assert brute_pathways(net, (1, 16)).tolist() == expected


def test_circular_padding_is_uniform():
    # every unit has 9 taps × 2 out-channels = 18 out-edges in each of 3 layers
    net = from_spec("3*conv3", (1, 7, 7), padding="circular", width=2)
    assert exact(net, (1, 7, 7)).tolist() == [[18 ** 3] * 7] * 7
    assert brute_pathways(net, (1, 7, 7)).tolist() == [[18 ** 3] * 7] * 7


def test_2d_by_hand():
    # two valid 3×3 convolutions on 5×5: the separable outer product of [1, 2, 3, 2, 1]
    row = [1, 2, 3, 2, 1]
    expected = [[a * b for b in row] for a in row]
    net = from_spec("2*conv3", (1, 5, 5), padding="valid", width=1)
    assert exact(net, (1, 5, 5)).tolist() == expected
    assert brute_pathways(net, (1, 5, 5)).tolist() == expected
    # one zero-padded 'same' 3×3 conv on 3×3: corners are read by 2×2 outputs, edges 2×3, the centre 3×3
    net = from_spec("conv3", (1, 3, 3), padding="same", width=1)
    assert exact(net, (1, 3, 3)).tolist() == [[4, 6, 4], [6, 9, 6], [4, 6, 4]]
    # stride 2 valid 3×3 on 5×5: outputs read rows/cols {0,1,2} and {2,3,4}
    net = from_spec("conv3/s2", (1, 5, 5), padding="valid", width=1)
    row = [1, 1, 2, 1, 1]
    assert exact(net, (1, 5, 5)).tolist() == [[a * b for b in row] for a in row]
    # to a corner output of the same-padded net above: only its 2×2 window
    net = from_spec("conv3", (1, 3, 3), padding="same", width=1)
    assert exact(net, (1, 3, 3), to=(0, 0)).tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 0]]


@pytest.mark.parametrize("padding, expected", [
    ("reflect", [2, 4, 4, 2]),     # o=0 reads (1, 0, 1): input 1 twice
    ("symmetric", [3, 3, 3, 3]),   # o=0 reads (0, 0, 1): input 0 twice
    ("replicate", [3, 3, 3, 3]),
    ("circular", [3, 3, 3, 3]),
    ("same", [2, 3, 3, 2]),
    ("full", [3, 3, 3, 3]),
])
def test_padding_modes_by_hand(padding, expected):
    net = from_spec("conv3", (1, 4), padding=padding, width=1)
    assert exact(net, (1, 4)).tolist() == expected
    assert brute_pathways(net, (1, 4)).tolist() == expected


@pytest.mark.parametrize("pool, n, expected", [
    (nn.MaxPool1d(2, 2, ceil_mode=True), 5, [1, 1, 1, 1, 1]),  # last window (4, overhang)
    (nn.MaxPool1d(3, 2, padding=1, ceil_mode=True), 6, [1, 2, 1, 2, 1, 2]),  # windows end (5, pad, overhang)
    (nn.AvgPool1d(3, 2, padding=1, ceil_mode=True), 6, [1, 2, 1, 2, 1, 2]),
    (nn.MaxPool1d(2, 1, dilation=2), 5, [1, 1, 2, 1, 1]),
    (nn.AdaptiveAvgPool1d(3), 5, [1, 2, 1, 2, 1]),  # windows [0, 2), [1, 4), [3, 5)
    (nn.AdaptiveMaxPool1d(5), 3, [2, 3, 2]),  # more outputs than inputs: windows overlap
    (nn.Upsample(scale_factor=2), 3, [2, 2, 2]),
    (nn.Upsample(size=4, mode="linear"), 3, [2, 2, 2]),  # sources 0 | 0, 1 | 1, 2 | 2
    (nn.Upsample(size=5, mode="linear", align_corners=True), 3, [2, 3, 2]),  # 0 | 0, 1 | 1 | 1, 2 | 2
])
def test_pooling_by_hand(pool, n, expected):
    assert exact(pool, (1, n)).tolist() == expected
    assert brute_pathways(pool, (1, n)).tolist() == expected


def test_channels_multiply_paths():
    # a second input channel does not change counts from channel 0; width 3 gives 3 out-edges per unit per layer
    net = from_spec("2*conv1", (2, 3), padding="valid", width=3)
    assert exact(net, (2, 3)).tolist() == [9, 9, 9]
    assert brute_pathways(net, (2, 3)).tolist() == [9, 9, 9]


# ------------------------------------------------------------ engine bugs found by these tests

class _CatSelf(nn.Module):
    def forward(self, x):
        return torch.cat([x, x], dim=1)


class _AddSelf(nn.Module):
    def forward(self, x):
        return x + x


def test_cat_of_the_same_tensor_twice():
    assert exact(_CatSelf(), (1, 4)).tolist() == [2, 2, 2, 2]


def test_add_of_the_same_tensor_twice():
    assert exact(_AddSelf(), (1, 4)).tolist() == [2, 2, 2, 2]


def test_upsample_recompute_scale_factor():
    up = nn.Upsample(scale_factor=1.7, recompute_scale_factor=True)  # 4 → 6: output o reads floor(o*4/6)
    assert unit_weight_gradient(up, (1, 4)).tolist() == [2, 1, 2, 1]
    assert exact(up, (1, 4)).tolist() == [2, 1, 2, 1]


def test_tolerance_table_is_the_1e9_rule_for_float64():
    assert_close_rel(np.array([1.0 + 5e-10, 0.0]), np.array([1, 0], dtype=object), torch.float64)
    assert_close_rel(np.array([1e300]), np.array([10 ** 300], dtype=object), torch.float64)
    with pytest.raises(AssertionError, match="1 of 2 values differ"):
        assert_close_rel(np.array([1.0 + 2e-9, 0.0]), np.array([1, 0], dtype=object), torch.float64)
    with pytest.raises(AssertionError):  # no path must stay no path
        assert_close_rel(np.array([1e-300]), np.array([0], dtype=object), torch.float64)
    huge = 3 ** 1000  # beyond float64: compared through logarithms
    with pytest.raises(AssertionError):
        assert_close_rel(np.array([huge * 2], dtype=object), np.array([huge], dtype=object), torch.float64)
