"""torchvision architectures end to end: tracing, real shapes, and pathway counts against autograd.

The reference is :func:`edgewise.testing.oracle.autograd_pathways`: the gradient
of the selected outputs in the full-width network with every weight one, which
shares nothing with the tracer or the engine. Counts at these sizes are far
beyond 2**53, where float64 autograd is no longer exact, so they are compared
exactly below 2**53 and to a relative 1e-12 above it.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pytest
import torch

import edgewise
import edgewise._counts.logspace as logspace
import edgewise._counts.scaled as scaled
from edgewise import EdgewiseError, nets
from edgewise.testing.oracle import autograd_pathways

torchvision = pytest.importorskip("torchvision")

#: model → input shape (inception_v3 needs at least 75×75)
ZOO = {
    "resnet18": (3, 64, 64),
    "resnet50": (3, 64, 64),
    "resnext50_32x4d": (3, 64, 64),
    "vgg11": (3, 64, 64),
    "alexnet": (3, 64, 64),
    "squeezenet1_0": (3, 64, 64),
    "mobilenet_v2": (3, 64, 64),
    "mobilenet_v3_small": (3, 64, 64),
    "efficientnet_b0": (3, 64, 64),
    "densenet121": (3, 64, 64),
    "regnet_x_400mf": (3, 64, 64),
    "mnasnet0_5": (3, 64, 64),
    "googlenet": (3, 64, 64),
    "inception_v3": (3, 75, 75),
    # permute/LayerNorm/Linear blocks, channel shuffles, shifted-window attention, SE gates (issue 15)
    "convnext_tiny": (3, 64, 64),
    "shufflenet_v2_x0_5": (3, 64, 64),
    "swin_t": (3, 64, 64),
    "regnet_y_400mf": (3, 64, 64),
}

RTOL_AUTOGRAD = 1e-12  # float64 autograd vs exact integers beyond 2**53
RTOL_FLOAT = 1e-9  # the project's rule for float-mode counts



@functools.lru_cache(maxsize=None)
def model(name: str) -> torch.nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # inception's init-weights FutureWarning
        return torchvision.models.get_model(name, weights=None).eval()  # architecture only: no download


@functools.lru_cache(maxsize=None)
def graph(name: str) -> edgewise.Graph:
    return edgewise.trace(model(name), ZOO[name])


def module_outputs(net: torch.nn.Module, shape) -> dict[str, tuple]:
    """Real output shape of every leaf-module call, keyed like edgewise names them (``name``, ``name#1``, ...)."""
    seen: dict[str, int] = {}
    shapes: dict[str, tuple] = {}

    def hook(mod, args, out, name):
        k = seen.get(name, 0)
        seen[name] = k + 1
        if isinstance(out, torch.Tensor):
            shapes[name if k == 0 else f"{name}#{k}"] = tuple(out.shape[1:])

    hooks = [m.register_forward_hook(functools.partial(hook, name=name))
             for name, m in net.named_modules() if name and not list(m.children())]
    try:
        with torch.no_grad():
            out = net(torch.zeros((1, *shape)))
    finally:
        for h in hooks:
            h.remove()
    shapes["<output>"] = tuple(out.shape[1:])
    return shapes


def spatial_layer(g: edgewise.Graph, net: torch.nn.Module) -> str:
    """The deepest module node whose map is at least 3 positions wide on every axis."""
    modules = dict(net.named_modules())
    names = [n.name for n in g if n.name.split("#")[0] in modules and len(n.shape) == 3 and min(n.shape[1:]) >= 3
             and isinstance(modules[n.name.split("#")[0]], (torch.nn.Conv2d, torch.nn.MaxPool2d, torch.nn.AvgPool2d))]
    return names[-1]


def as_floats(counts: np.ndarray) -> np.ndarray:
    return np.array([float(v) for v in counts.ravel()]).reshape(counts.shape)


def assert_counts_match(exact: np.ndarray, reference: np.ndarray, rtol: float, what: str):
    """Exact integers vs float64 counts: same zeros, equal below 2**53, within ``rtol`` above."""
    assert exact.shape == reference.shape, what
    e = as_floats(exact)
    assert np.array_equal(e == 0, reference == 0), f"{what}: different unreachable positions"
    small = np.array([0 < v < 2 ** 53 for v in exact.ravel()]).reshape(exact.shape)
    assert np.array_equal(e[small], reference[small]), f"{what}: counts below 2**53 differ"
    big = e > 0
    rel = np.abs(reference[big] - e[big]) / e[big]
    assert rel.size == 0 or rel.max() <= rtol, f"{what}: relative difference {rel.max():.3g} > {rtol}"


def log_rel_error(float_log10: np.ndarray, exact: np.ndarray) -> float:
    """Largest relative error of float-mode counts (given as log10) against exact ints of any size."""
    ref = np.array([math.log10(v) if v > 0 else -math.inf for v in exact.ravel()]).reshape(exact.shape)
    assert np.array_equal(np.isfinite(ref), np.isfinite(float_log10)), "different unreachable positions"
    fin = np.isfinite(ref)
    return float(np.max(np.abs(float_log10[fin] - ref[fin]), initial=0.0)) * math.log(10)


# ----------------------------------------------------------------------------- the zoo

@pytest.mark.parametrize("name", list(ZOO))
def test_trace_shapes_equal_the_real_module_outputs(name):
    g, net = graph(name), model(name)
    real = module_outputs(net, ZOO[name])
    modules = dict(net.named_modules())
    compared = 0
    for node in g:
        if node.name.split("#")[0] in modules:
            assert node.name in real, f"{name}: node {node.name!r} has no matching module call"
            # a token-major tensor (N, H, W, C) is described channel-major, like every node: (C, H, W)
            same = node.shape == real[node.name] or (len(node.shape) == 3 and node.op == "Linear"
                                                     and node.shape == (real[node.name][-1], *real[node.name][:-1]))
            assert same, f"{name}: {node.name} {node.shape} != real {real[node.name]}"
            compared += 1
    assert compared >= 10
    assert g[g.output].shape == real["<output>"]


@pytest.mark.parametrize("name", list(ZOO))
def test_exact_counts_equal_autograd(name):
    g, net, shape = graph(name), model(name), ZOO[name]
    layer = spatial_layer(g, net)
    cases = [(None, "all"), (layer, "all"), (layer, "center")]
    for lay, to in cases:
        what = f"{name} layer={lay} to={to}"
        exact = edgewise.pathways(g, to=to, layer=lay, exact=True)
        ref = autograd_pathways(net, shape, to=to, layer=lay)
        assert_counts_match(exact.counts, ref, RTOL_AUTOGRAD, what)
        fl = edgewise.pathways(g, to=to, layer=lay)
        assert fl.scale == 0 and np.isfinite(fl.counts).all()
        assert log_rel_error(fl.log10, exact.counts) < RTOL_FLOAT, what
        assert_counts_match(exact.counts, fl.counts, RTOL_FLOAT, what + " (float mode)")
    # the output is a vector of logits: 'center' selects all of it, as 'all' does
    assert edgewise.pathways(g, to="center", exact=True).counts.tolist() == \
        edgewise.pathways(g, to="all", exact=True).counts.tolist()


# ----------------------------------------------------------------------------- the oracle itself

SPECS = [
    ("4*conv3", (1, 9)),
    ("conv64/s4, conv64/s4", (1, 256)),
    ("2*conv3, maxpool2, 2*conv3, maxpool2, 3*conv3", (1, 32, 32)),
    ("conv3/d2, avgpool3/s2, res(conv3, conv3), gap, fc10", (2, 20, 17)),
    ("res(conv3/s2, conv3), conv5/s3", (1, 40)),
    ("3*conv4, maxpool3/s2, conv2/c5", (3, 23, 19)),
]


#: (spec, padding) pairs that cannot be built: too small for valid padding, or a residual
#: block whose map grows under full padding
UNBUILDABLE = {(SPECS[1][0], "valid"), (SPECS[2][0], "valid"), (SPECS[3][0], "valid"), (SPECS[3][0], "full"),
               (SPECS[4][0], "valid"), (SPECS[4][0], "full")}


@pytest.mark.parametrize("padding", list(nets.PADDINGS))
@pytest.mark.parametrize("spec, shape", SPECS)
def test_autograd_oracle_equals_exact_counts_on_spec_nets(spec, shape, padding):
    if (spec, padding) in UNBUILDABLE:
        with pytest.raises(EdgewiseError, match="bad spec"):
            nets.from_spec(spec, shape, padding=padding)
        return
    net = nets.from_spec(spec, shape, padding=padding)
    for to in ("all", "center"):
        exact = edgewise.pathways(net, shape, to=to, exact=True).counts
        assert_counts_match(exact, autograd_pathways(net, shape, to=to), RTOL_AUTOGRAD, f"{spec} {padding} {to}")


def test_ones_network_leaves_the_model_alone():
    from edgewise.testing.oracle import ones_network

    net = torchvision.models.get_model("mobilenet_v3_small", weights=None).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    grads = {k: p.requires_grad for k, p in net.named_parameters()}
    ones = ones_network(net)
    autograd_pathways(net, (3, 32, 32))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert grads == {k: p.requires_grad for k, p in net.named_parameters()}
    assert all(m.training for m in net.modules()) and not any(m.training for m in ones.modules())
    assert all((p == 1).all() for n, p in ones.named_parameters() if n.endswith("weight") and p.dim() > 1)


# ----------------------------------------------------------------------------- range and depth

def test_resnet152_at_224_does_not_overflow():
    net = model("resnet152")
    g = edgewise.trace(net, (3, 224, 224))
    fl = edgewise.pathways(g)
    assert np.isfinite(fl.log10).all() and (fl.log10 > 0).all()
    assert fl.log10.min() > 400  # ~1e430 paths per position: far beyond float64
    assert np.isfinite(fl.counts).all() and fl.scale > 0
    exact = edgewise.pathways(g, exact=True)
    assert log_rel_error(fl.log10, exact.counts) < RTOL_FLOAT
    # autograd, seeded with 2**-1000 to stay in range, agrees too (the result is counts * 2**-1000, exactly)
    ref = autograd_pathways(net, (3, 224, 224), scale_log2=1000)
    assert np.isfinite(ref).all() and (ref > 0).all()
    assert np.max(np.abs(np.log10(ref) + 1000 * math.log10(2) - fl.log10)) * math.log(10) < RTOL_FLOAT


def test_200_valid_conv3_layers_float_vs_exact():
    net = nets.from_spec("200*conv3", (1, 401), padding="valid", width=2)
    g = edgewise.trace(net, (1, 401))
    assert g[g.output].shape == (2, 1)
    exact = edgewise.pathways(g, exact=True)
    fl = edgewise.pathways(g)
    assert log_rel_error(fl.log10, exact.counts) < RTOL_FLOAT
    assert exact.counts[0] == 2 ** 200 and exact.counts[200] == 2 ** 200 * _trinomial_centre(200)


def _trinomial_centre(n: int) -> int:
    """Central coefficient of (1 + x + x²)^n: paths through n valid 3-tap layers to the middle input."""
    row = [1]
    for _ in range(n):
        row = [sum(row[j - t] for t in range(3) if 0 <= j - t < len(row)) for j in range(len(row) + 2)]
    return row[n]


@pytest.mark.parametrize("top, bottom", [(40.0, -40.0), (60.0, -60.0), (200.0, -200.0)])
@pytest.mark.parametrize("case", ["1d", "2d", "resnet18"])
def test_scaled_float_rescales_and_falls_back_to_logs(monkeypatch, case, top, bottom):
    # Narrow float64's usable range artificially: the scaled number system must rescale
    # (exactly) far more often, and switch to logarithms when a map spans more than it holds.
    if case == "1d":
        g = edgewise.trace(nets.from_spec("200*conv3", (1, 401), padding="valid", width=2), (1, 401))
    elif case == "2d":
        g = edgewise.trace(nets.from_spec("30*conv3", (1, 61, 61), padding="valid", width=1), (1, 61, 61))
    else:
        g = graph("resnet18")
    exact = edgewise.pathways(g, exact=True)
    monkeypatch.setattr(scaled, "_TOP", top)
    monkeypatch.setattr(scaled, "_BOTTOM", bottom)
    monkeypatch.setattr(scaled, "_AIM", top / 2)
    fell_back, init = [], logspace.LogCounts.__init__

    def spy(self, device=None):
        fell_back.append(device)
        init(self, device)

    monkeypatch.setattr(logspace.LogCounts, "__init__", spy)
    fl = edgewise.pathways(g)
    assert log_rel_error(fl.log10, exact.counts) < RTOL_FLOAT
    span = max(math.log2(v) for v in exact.counts.ravel() if v) - min(math.log2(v) for v in exact.counts.ravel() if v)
    if span > top - bottom:
        assert fell_back, "a map wider than the range must fall back to logarithms"


def test_log_fallback_beyond_1e600_in_one_map():
    # 1300 valid 3-tap layers: the middle input has ~1e618 paths, the ends one each
    net = nets.from_spec("1300*conv3", (1, 2601), padding="valid", width=1)
    g = edgewise.trace(net, (1, 2601))
    exact = edgewise.pathways(g, exact=True)
    fl = edgewise.pathways(g)
    assert fl.log10.max() > 600 and abs(fl.log10[0]) < 1e-12 and abs(fl.log10[-1]) < 1e-12
    assert log_rel_error(fl.log10, exact.counts) < RTOL_FLOAT
