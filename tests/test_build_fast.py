"""The fast Graph build (``_trace._build``, ``_shapes.infer_shapes``, ``Layout.handle``) against the slow code it
replaced, kept here as the reference: every fast helper is swapped for the original version (``map_arg`` walks,
a fresh ``named_modules()`` table, Windows built anew, ``Node(...)``, ``getattr``, ``torch.broadcast_shapes``,
``count_statistics`` asked for every plain layer, operands scanned in full, a Linear over channels decoded unit by
unit, ids decoded element by element, Swin's windows searched among every query-key pair, numpy's ``np.unique``,
also row by row) and
the Graphs must be identical:
every Node field, node order and Graph attribute.
"""

from __future__ import annotations

import collections
import dataclasses
import operator
import pickle

import numpy as np
import pytest
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import edgewise
from edgewise import _layout, _layout_more, _shapes, _trace, nets, remedies
from edgewise._axis import Window
from edgewise.graph import Node
from edgewise.testing.random_nets import random_net, random_spec

SETTINGS = settings(derandomize=True, max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

pytestmark = [pytest.mark.filterwarnings("ignore:Using padding='same'"), pytest.mark.usefixtures("fx_path")]


# ------------------------------------------------------------------ the slow reference

def _slow_tensor_args(fx, known):
    found = []
    torch.fx.node.map_arg((fx.args, fx.kwargs), lambda a: found.append(a) if a in known else None)
    return found


def _slow_operands(node, shapes):
    found = []

    def visit(a):
        if isinstance(a, torch.fx.Node):
            found.append(shapes[a])
        elif isinstance(a, torch.Tensor):
            raise _shapes._Unknown("constant tensor")
        return a

    torch.fx.node.map_aggregate((node.args, node.kwargs), visit)
    return found


def _slow_only(node, shapes):
    ops = _slow_operands(node, shapes)
    if len(ops) != 1 or not isinstance(node.args[0], torch.fx.Node):
        raise _shapes._Unknown("operands")
    return ops[0]


def _slow_window_sizes(axes, in_shape):
    return tuple(a.out_size(i) for a, i in zip(axes, in_shape[1:])) if axes and all(
        type(a) is Window for a in axes) else None


def _slow_dead(self, fx):
    graph = fx.graph
    if getattr(self, "_live_graph", None) is not graph:
        keep, stack = set(), [n for n in graph.nodes if n.op == "output"]
        while stack:
            cur = stack.pop()
            if cur not in keep:
                keep.add(cur)
                stack.extend(cur.all_input_nodes)
        self._live_graph, self._reaching = graph, keep
    return fx not in self._reaching


SLOW = {
    (_trace, "_tensor_args"): _slow_tensor_args,
    (_trace, "_conv_axes"): _trace._new_conv_axes,
    (_trace, "_node"): Node,
    (_trace, "_attr"): getattr,
    (_trace, "_window_sizes"): _slow_window_sizes,
    (_shapes, "_operands"): _slow_operands,
    (_shapes, "_only"): _slow_only,
    (_shapes, "_broadcast"): lambda ops: tuple(torch.broadcast_shapes(*ops)),
    (_layout, "_statistics_used"): lambda module: True,
    (_layout.Layout, "_dead"): _slow_dead,
    (_layout.Layout, "_held"): lambda self, args: [a for a in args if a in self.units],
    (_layout_more, "_watched"): lambda args, *tables: any(a in t for a in args for t in tables),
    (_layout.Layout, "_row_positions"): lambda self, rows: None,  # every Linear over channels decoded unit by unit
    (_layout.Layout, "_node_between"): lambda self, lo, hi: None,  # every ids tensor decoded element by element
    (_layout.Layout, "_windows"): lambda self, *args: None,  # Swin's windows found among (H·W)² query-key pairs
    (_layout.Layout, "_remember_rows"): lambda self, *args: None,  # every ids tensor read, none known in rows
    (_layout, "unique"): np.unique,  # numpy's own (hash-based for integers)
    (_layout_more, "unique"): np.unique,
    (_layout, "unique_rows"): lambda a, return_inverse=False: np.unique(a, axis=0, return_inverse=return_inverse),
}


def slow_trace(model, shape, **kw):
    """``edgewise.trace`` (cold) with every fast helper swapped for the original code."""
    saved = {k: getattr(*k) for k in SLOW}
    orig_build, orig_shapes = _trace._build, _trace.infer_shapes
    try:
        for (owner, name), fn in SLOW.items():
            setattr(owner, name, fn)
        # a fresh named_modules() table in each stage, as before
        _trace._build = lambda *a: orig_build(*a[:6], dict(a[0].named_modules()))
        _trace.infer_shapes = lambda *a: orig_shapes(*a[:4])
        return cold_trace(model, shape, **kw)
    finally:
        for (owner, name), fn in saved.items():
            setattr(owner, name, fn)
        _trace._build, _trace.infer_shapes = orig_build, orig_shapes


def cold_trace(model, shape, **kw):
    _trace._CACHE.clear()
    _trace._FX.clear()
    return edgewise.trace(model, shape, **kw)


def outcome(fn, model, shape, **kw):
    """Everything a Graph holds (or the error raised), comparable with ``==``."""
    try:
        g = fn(model, shape, **kw)
    except Exception as e:  # noqa: BLE001  (the same error either way)
        return type(e).__name__, str(e)
    return ([dataclasses.astuple(n) for n in g], [vars(n) for n in g], list(g.nodes), g.input, g.output,
            g.input_shape, g.model_name, g.padding, g.norm_stats, g.norm_layers)


def typed(x):
    """``x`` with the type of every value beside it (1 == 1.0 == True; a Window's fields by name)."""
    if isinstance(x, (list, tuple)):
        return type(x), [typed(v) for v in x]
    if isinstance(x, dict):
        return type(x), [(typed(k), typed(v)) for k, v in x.items()]
    if dataclasses.is_dataclass(x):
        return type(x), typed(vars(x))
    return type(x), x


def assert_same(model, shape, **kw):
    fast, slow = outcome(cold_trace, model, shape, **kw), outcome(slow_trace, model, shape, **kw)
    assert fast == slow
    assert typed(fast) == typed(slow)


# ------------------------------------------------------------------ whole traces

class Blocks(nn.Module):
    """Residual, branching (cat), depthwise, strided, dilated, pooled, with BatchNorm with and without running
    statistics, a GroupNorm, functional ops with keyword and nested arguments."""

    def __init__(self, n: int = 2):
        super().__init__()
        conv, bn, pool = (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d) if n == 2 else (nn.Conv1d, nn.BatchNorm1d,
                                                                                  nn.MaxPool1d)
        self.stem = conv(2, 4, 3, stride=2, padding=1)
        self.bn = bn(4)
        self.free = bn(4, track_running_stats=False)
        self.dw = conv(4, 4, 3, padding=2, dilation=2, groups=4)
        self.pw = conv(8, 4, 1)
        self.gn = nn.GroupNorm(2, 4)
        self.pool = pool(2, ceil_mode=True)
        self.head = nn.Linear(4, 3)
        self.n = n

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        y = self.free(self.dw(x))
        x = self.pw(torch.cat([x, y], dim=1)) + x
        x = torch.add(input=self.gn(x), other=x)
        x = self.pool(x)
        x = x.mean(dim=[2, 3] if self.n == 2 else [2])
        return self.head(x)


class Gated(nn.Module):
    """A softmax gate over two branches (selective kernel) and attention over positions: units followed off the
    canonical layout, gates and attention scores."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 5, padding=2)
        self.score = nn.Conv2d(4, 2, 1)
        self.qkv = nn.Linear(4, 12)

    def forward(self, x):
        w = F.softmax(self.score(x), dim=1)
        x = self.a(x) * w[:, :1] + self.b(x) * w[:, 1:]
        t = x.flatten(2).transpose(1, 2)
        q, k, v = self.qkv(t).chunk(3, dim=-1)
        att = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        return (att @ v).transpose(1, 2).reshape(x.shape)


class ShapeBranch(nn.Module):
    """Control flow on a shape (traced by the shape tracer, which leaves unused nodes behind) and an unused op."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(2, 3, 3, padding=1), nn.Conv2d(3, 3, 3)

    def forward(self, x):
        x = self.a(x)
        unused = torch.cumsum(x, dim=1) * 2  # noqa: F841  (an op edgewise refuses, never read)
        return self.b(x) if x.shape[-1] > 4 else x


TORCHVISION = ["resnet18", "densenet121", "mobilenet_v3_small", "efficientnet_b0", "shufflenet_v2_x0_5",
               "squeezenet1_0", "convnext_tiny", "swin_t", "regnet_y_400mf"]


@pytest.mark.parametrize("norm_stats", ["ignore", "count"])
@pytest.mark.parametrize("n", [1, 2])
def test_random_blocks_build_the_graph_of_the_slow_code(n, norm_stats):
    torch.manual_seed(0)
    assert_same(Blocks(n).eval(), (2, 16, 16) if n == 2 else (2, 24), norm_stats=norm_stats)


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_models_build_the_graph_of_the_slow_code(name):
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.get_model(name, weights=None)
    for norm_stats in ("ignore", "count"):
        assert_same(model, (3, 64, 64), norm_stats=norm_stats)


def test_a_vision_transformer_with_a_class_token_builds_the_graph_of_the_slow_code():
    """Linears over tokens whose rows come from two nodes (the class token beside the patches)."""
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    vit = torchvision.models.vision_transformer.VisionTransformer(image_size=32, patch_size=8, num_layers=2,
                                                                   num_heads=2, hidden_dim=16, mlp_dim=32)
    for norm_stats in ("ignore", "count"):
        assert_same(vit.eval(), (3, 32, 32), norm_stats=norm_stats)


@pytest.mark.parametrize("family", ["swin", "swin_v2", "maxvit"])
def test_window_attention_builds_the_graph_of_the_slow_code(family):
    """Swin's windows (shifted, on a padded grid; V1 and V2) and MaxViT's block and grid attention: ids of one node
    paired and placed without decoding, the windows' relations without the (H·W)² mask, numbers made distinct by
    sorting."""
    from test_modern import small

    model, shape = small(family)
    for norm_stats in ("ignore", "count"):
        assert_same(model.eval(), shape, norm_stats=norm_stats)


class ScaledTokens(nn.Module):
    """Tokens (more than the 4096 elements a pairing is first checked on a sample of) plus a 0-d buffer, and a
    residual add of two token tensors of different nodes."""

    def __init__(self):
        super().__init__()
        self.embed, self.mix = nn.Conv2d(3, 48, 1), nn.Linear(48, 48)
        self.register_buffer("shift", torch.tensor(0.5))

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2) + self.shift  # (1, 100, 48)
        t = t + self.mix(t)
        return t.transpose(1, 2).reshape(1, 48, 10, 10)


def test_large_token_operands_with_a_scalar_build_the_graph_of_the_slow_code():
    graph = cold_trace(ScaledTokens().eval(), (3, 10, 10))
    assert sum(n.kind == "add" for n in graph) == 1  # the residual; the scalar is a per-unit shift
    assert_same(ScaledTokens().eval(), (3, 10, 10))


@pytest.mark.parametrize("norm_stats", ["ignore", "count"])
def test_gates_and_attention_build_the_graph_of_the_slow_code(norm_stats):
    torch.manual_seed(0)
    assert_same(Gated().eval(), (4, 6, 6), norm_stats=norm_stats)


def test_shape_dependent_forward_builds_the_graph_of_the_slow_code():
    for shape, layers in (((2, 8, 8), ["input", "a", "b"]), ((2, 3, 3), ["input", "a"])):
        assert_same(ShapeBranch().eval(), shape)
        assert list(cold_trace(ShapeBranch().eval(), shape).nodes) == layers


def test_layer_prefix_builds_the_graph_of_the_slow_code():
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.resnet18(weights=None)
    for layer in ("layer2.1", "layer3.0.conv1", "layer4"):
        assert_same(model, (3, 64, 64), layer=layer)


@pytest.mark.parametrize("remedy", remedies.names())
@pytest.mark.parametrize("shape", [(1, 24), (1, 16, 16)])
def test_remedies_build_the_graph_of_the_slow_code(remedy, shape):
    net = nets.from_spec("conv3, conv5/s2, conv3/d2, gap, fc4", shape)
    try:
        net = remedies.apply(net, remedy)
    except edgewise.EdgewiseError:
        pytest.skip(f"{remedy} does not fit this net")
    for norm_stats in ("ignore", "count"):
        assert_same(net, shape, norm_stats=norm_stats)


@SETTINGS
@given(random_net(), st.sampled_from(["ignore", "count"]))
def test_random_nets_build_the_graph_of_the_slow_code(case, norm_stats):
    assert_same(case.model, case.input_shape, norm_stats=norm_stats)


@SETTINGS
@given(random_spec())
def test_random_specs_build_the_graph_of_the_slow_code(case):
    assert_same(nets.from_spec(case.spec, case.input_shape, padding=case.padding, width=case.width),
                case.input_shape)


def test_errors_are_those_of_the_slow_code():
    class Sort(nn.Module):
        def forward(self, x):
            return torch.sort(nn.functional.relu(x), dim=1).values

    class Broadcast(nn.Module):
        def forward(self, x):
            return x[:, :, :3] + x[:, :, :4]  # shapes that do not broadcast: the model's own error

    class GateInto(nn.Module):  # a softmax gate reaching a layer, or a sum: refused
        def __init__(self, into):
            super().__init__()
            self.c, self.into = nn.Conv2d(2, 2, 3, padding=1), into

        def forward(self, x):
            return self.into(F.softmax(self.c(x), dim=1)) + x

    for model in (Sort(), Broadcast(), GateInto(nn.Conv2d(2, 2, 1)), GateInto(nn.Identity())):
        a, b = outcome(cold_trace, model, (2, 8, 8)), outcome(slow_trace, model, (2, 8, 8))
        assert a == b and a[0] == "EdgewiseError"


def test_layers_registered_while_tracing_build_the_graph_of_the_slow_code():
    class Late(nn.Module):  # (the module table is taken before torch.fx's trace, and again if it misses one)
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(2, 2, 3)

        def forward(self, x):
            if "late" not in self._modules:
                self.late = nn.Conv2d(2, 2, 1, groups=2)
            return self.late(self.c(x))

    assert outcome(cold_trace, Late(), (2, 8, 8)) == outcome(slow_trace, Late(), (2, 8, 8))
    assert cold_trace(Late(), (2, 8, 8))["late"].groups == 2


# ------------------------------------------------------------------ the helpers one by one

_Named = collections.namedtuple("_Named", "a")


@given(st.recursive(st.sampled_from(["n0", "n1", "n2", "other", 3, None]),
                    lambda inner: st.one_of(st.lists(inner, max_size=3), st.lists(inner, max_size=3).map(tuple),
                                            st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
                                            st.tuples(inner, inner, inner).map(lambda t: slice(*t))),
                    max_leaves=12))
@settings(max_examples=200, deadline=None, derandomize=True)
def test_operand_walks_are_torch_fx_map_arg(args):
    graph = torch.fx.Graph()
    nodes = {f"n{i}": graph.placeholder(f"n{i}") for i in range(3)}
    other = graph.placeholder("other")

    def real(a):
        return nodes.get(a, other) if isinstance(a, str) else a

    value = torch.fx.node.map_aggregate(args, real)
    call = graph.call_function(operator.add, (value, _Named((nodes["n1"],))), {"k": value})
    known = {n: i for i, n in enumerate(nodes.values())}
    assert _trace._tensor_args(call, known) == _slow_tensor_args(call, known)
    shapes = {n: (1, i) for i, n in enumerate([*nodes.values(), other])}
    assert _shapes._operands(call, shapes) == _slow_operands(call, shapes)


def test_fast_nodes_are_dataclass_nodes():
    fields = ("a", "conv", ("b",), (3, 4, 4), (Window(3, 1, 1, (1, 1)),), 2, "Conv2d", (1,))
    fast, slow = _trace._node(*fields), Node(*fields)
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert list(vars(fast).items()) == list(vars(slow).items())
    assert pickle.dumps(fast) == pickle.dumps(slow) and pickle.loads(pickle.dumps(fast)) == slow
    assert [f.name for f in dataclasses.fields(Node)] == list(vars(fast))  # (a new field would need _node)
    assert not hasattr(Node, "__post_init__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.kind = "pool"


@pytest.mark.parametrize("conv", [
    nn.Conv2d(2, 2, 3), nn.Conv2d(2, 2, (3, 5), stride=(2, 1), padding=(1, 2), dilation=(1, 3)),
    nn.Conv2d(2, 2, 3, padding="same", dilation=2), nn.Conv2d(2, 2, 4, padding="same"),
    nn.Conv2d(2, 2, 3, padding="valid"), nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"),
    nn.Conv1d(2, 2, 5, stride=3, padding=2, padding_mode="circular"),
])
def test_cached_conv_windows_are_new_ones(conv):
    n = 2 if isinstance(conv, nn.Conv2d) else 1
    for _ in range(2):
        assert _trace._conv_axes(conv, n) == _trace._new_conv_axes(conv, n)


def test_conv_windows_of_odd_hyper_parameters_are_not_cached():
    conv = nn.Conv2d(2, 2, 3)
    conv.kernel_size = [3, 3]  # a list (unhashable), and floats or bools that equal ints: never a cache key
    assert _trace._conv_axes(conv, 2) == _trace._new_conv_axes(conv, 2)
    conv.kernel_size, conv.stride = (3, 3), (True, True)
    assert not _trace._exact((2, (3, 3), (True, True)))
    assert not _trace._exact((2, (3.0, 3)))
    assert not _trace._exact((2, 3.0)) and not _trace._exact((2, True)) and not _trace._exact((2, [3, 3]))
    assert _trace._exact((2, (3, 3), "zeros", 1))
    assert repr(_trace._conv_axes(conv, 2)) == repr(_trace._new_conv_axes(conv, 2))


class _Attrs(nn.Module):
    klass = 7

    def __init__(self):
        super().__init__()
        self.plain = 1
        self.sub = nn.Identity()
        self.p = nn.Parameter(torch.zeros(1))
        self.register_buffer("b", torch.ones(1))

    @property
    def prop(self):
        return 5


@pytest.mark.parametrize("key", ["plain", "sub", "p", "b", "klass", "prop", "groups", "edgewise_op", "training"])
def test_attr_is_getattr(key):
    m = _Attrs()
    assert _trace._attr(m, key, "default") is getattr(m, key, "default")
    assert _trace._attr(3, key, "default") == getattr(3, key, "default")


@pytest.mark.parametrize("ops", [[(1, 3, 4, 4)], [(1, 3, 4, 4)] * 3, [(1, 3, 4, 4), (1, 3, 1, 1)],
                                 [(1, 1, 4), (1, 3, 1)], [(1, 3, 4, 4), (3, 1, 1)]])
def test_broadcast_is_torch_broadcast_shapes(ops):
    assert _shapes._broadcast(ops) == tuple(torch.broadcast_shapes(*ops))


def test_statistics_skipped_only_where_count_statistics_leaves_the_layer():
    for m in (nn.Conv2d(2, 2, 1), nn.ReLU(), nn.BatchNorm2d(2), nn.BatchNorm1d(2), nn.Linear(2, 2)):
        assert not _layout._statistics_used(m)
    for m in (nn.BatchNorm2d(2, track_running_stats=False), nn.BatchNorm1d(2, track_running_stats=False)):
        assert _layout._statistics_used(m)
