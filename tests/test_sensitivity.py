"""Gradient sensitivity: the fast engine against finite differences, the Monte-Carlo identity, perturbation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from edgewise import EdgewiseError, nets, pathways
from edgewise import sensitivity as S
from edgewise.testing.finite_diff import finite_difference_map
from edgewise.testing.random_nets import BLOCKS, random_net
from edgewise.theory import mc_tolerance

F64 = torch.float64
#: finite differences of width 1e-4 in float64 agree with the gradient to about 1e-8 relative
FD_RTOL = 1e-6

# no up-sampling: nearest neighbours create exact ties that max pooling then splits differently
SMOOTH_ENOUGH = tuple(k for k in BLOCKS if k != "upsample")


def _close(a, b, rtol=FD_RTOL):
    scale = max(float(np.abs(b).max()), 1e-12)
    np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale)


def _input(shape, seed=0, n=2):
    return torch.randn((n, *shape), generator=torch.Generator().manual_seed(seed), dtype=F64)


@settings(derandomize=True, max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=random_net(kinds=SMOOTH_ENOUGH, max_blocks=4), agg=st.sampled_from(["abs", "sq", "signed"]),
       to=st.sampled_from(["all", "center", "each"]))
def test_gradient_map_matches_finite_differences(case, agg, to):
    x = _input(case.input_shape)
    s = S.gradient_map(case.model, x, to=to, agg=agg, dtype=F64)
    _close(s.map, finite_difference_map(case.model, x, to=to, agg=agg))
    assert s.samples.shape == (2, *case.input_shape[1:])


@pytest.mark.parametrize("spec,shape,layer,to", [
    ("conv3/s2, conv5/d2, maxpool2, conv3", (2, 17, 13), None, (1, 2)),       # strided, dilated, pooled, non-square
    ("conv3, res(conv3, conv3), conv3/c4, avgpool2, fc5", (1, 12, 12), None, "all"),  # residual, head
    ("4*conv3", (3, 20), "conv3", 7),                                         # 1-D, inner layer by name
    ("depthwise", (1, 9, 11), "2", "center"),                                 # depthwise, inner layer
])
def test_real_layers_match_finite_differences(spec, shape, layer, to):
    if spec == "depthwise":
        with torch.random.fork_rng():  # seeded: not whatever the tests before left in the global generator
            torch.manual_seed(0)
            net = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1, groups=6),
                                nn.BatchNorm2d(6), nn.Conv2d(6, 2, 1))
    else:
        net = nets.from_spec(spec, shape, padding="same", width=4)
    x = _input(shape, seed=3)
    for agg in ("abs", "signed"):
        s = S.gradient_map(net, x, to=to, agg=agg, layer=layer, dtype=F64)
        _close(s.map, finite_difference_map(net, x, to=to, agg=agg, layer=layer))


def test_noise_inputs_are_seeded_and_the_model_is_untouched():
    net = nets.from_spec("3*conv3", (1, 16, 16))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.train()
    a = S.gradient_map(net, (1, 16, 16), seed=5)
    b = S.gradient_map(net, "1x16x16", seed=5)
    c = S.gradient_map(net, (1, 16, 16), seed=6)
    np.testing.assert_array_equal(a.map, b.map)
    assert not np.array_equal(a.map, c.map)
    assert net.training and all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert not any(m._forward_hooks for m in net.modules())


def test_each_sums_units_separately_signed_each_is_all():
    net = nets.from_spec("2*conv3", (1, 10), width=2)
    x = _input((1, 10))
    each = S.gradient_map(net, x, to="each", agg="signed", dtype=F64)
    whole = S.gradient_map(net, x, to="all", agg="signed", dtype=F64)
    np.testing.assert_allclose(each.map, whole.map, atol=1e-12)
    assert not np.allclose(S.gradient_map(net, x, to="each", agg="abs", dtype=F64).map,
                           S.gradient_map(net, x, to="all", agg="abs", dtype=F64).map)


def test_flat_outputs_and_torchvision_style_models():
    # seeded: with the global generator the weights depended on which tests ran before in the same process,
    # and an unlucky draw puts a ReLU within the finite-difference step of its kink
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                            nn.Linear(16, 3))
    x = _input((3, 8, 8))
    s = S.gradient_map(net, x, to="each", agg="sq", dtype=F64)
    _close(s.map, finite_difference_map(net, x, to="each", agg="sq"))
    assert s.map.shape == (8, 8)


@pytest.mark.parametrize("kwargs,message", [
    ({"agg": "max"}, "agg='max': expected one of 'abs', 'sq', 'signed'"),
    ({"to": "middle"}, "to='middle': expected 'all', 'center', 'each'"),
    ({"to": (9, 0)}, "lies outside layer"),
    ({"layer": "conv"}, "did you mean"),
])
def test_bad_arguments_name_the_fix(kwargs, message):
    net = nets.from_spec("conv3, conv3", (1, 6, 6))
    with pytest.raises(EdgewiseError, match=message.replace("(", r"\(").replace(")", r"\)")):
        S.gradient_map(net, (1, 6, 6), **kwargs)
    assert not any(m._forward_hooks for m in net.modules())


def test_bad_inputs():
    with pytest.raises(EdgewiseError, match="expected a batch"):
        S.gradient_map(nets.from_spec("conv3", (1, 6, 6)), torch.zeros(6, 6))
    with pytest.raises(EdgewiseError, match="at least 2"):
        S.init_sensitivity("conv3", (1, 6, 6), n_inits=1)
    with pytest.raises(EdgewiseError, match="to='each' is not available"):
        S.perturbation("conv3", (1, 6, 6), to="each")


# ------------------------------------------------------------------ Monte-Carlo over initialisations

def test_vectorised_initialisations_equal_a_loop_over_models():
    """Chunking is invisible, and each initialisation is the model reinitialise() gives for its seed."""
    net = nets.from_spec("conv3, maxpool2, conv3/d2", (1, 12, 12), width=3)
    a = S.init_sensitivity(net, (1, 12, 12), n_inits=5, seed=2, chunk=2, dtype=F64)
    b = S.init_sensitivity(net, (1, 12, 12), n_inits=5, seed=2, chunk=5, dtype=F64)
    np.testing.assert_allclose(a.samples, b.samples, rtol=1e-12)
    for seed, sample in zip(S._init_seeds(2, 5), a.samples):
        x, _ = S._init_inputs(seed, (1, 12, 12), 1, None)
        ref = S.gradient_map(S.reinitialise(net, seed), x, agg="sq", dtype=F64)
        np.testing.assert_allclose(sample, ref.map, rtol=1e-10)
    assert not a.fixed


def test_reinitialise_is_seeded_and_leaves_global_rng_alone():
    net = nets.from_spec("conv3, conv3", (1, 8, 8))
    torch.manual_seed(0)
    state = torch.random.get_rng_state()
    a, b, c = S.reinitialise(net, 1), S.reinitialise(net, 1), S.reinitialise(net, 2)
    assert torch.equal(state, torch.random.get_rng_state())
    wa, wb, wc = (m.conv1.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc) and not torch.equal(wa, net.conv1.weight)
    d = S.reinitialise(net, 1, std=0.1)
    assert torch.all(d.conv1.bias == 0) and abs(float(d.conv2.weight.detach().std()) - 0.1) < 0.03


@pytest.mark.parametrize("spec,shape,padding,to", [
    ("3*conv3", (1, 9, 9), "same", "all"),
    ("2*conv3", (1, 12), "reflect", "each"),        # reflect: the identity holds per output unit
    ("conv3, conv5/d2", (1, 16), "valid", "center"),
])
def test_linear_nets_expected_squared_gradient_is_sigma_2L_paths(spec, shape, padding, to):
    """E[(∂y/∂x_p)²] = σ^{2L} paths(p): checked position by position against the Monte-Carlo
    standard error with a Bonferroni z (a seeded test: it fails with probability < 1e-3 per seed)."""
    sigma = 0.7
    net = nets.from_spec(spec, shape, padding=padding, width=2, activation=None)
    depth = sum(isinstance(m, nn.Conv1d | nn.Conv2d) for m in net.modules())
    r = S.init_sensitivity(net, shape, to=to, n_inits=512, std=sigma, dtype=F64, chunk=64)
    counts = pathways(net, shape, to="all" if to == "each" else to, exact=True).counts.astype(float)
    expected = sigma ** (2 * depth) * counts
    sd = r.stderr * math.sqrt(r.n_inits)
    tol = mc_tolerance(sd, r.n_inits, n_tests=expected.size)
    assert np.all(np.abs(r.map - expected) <= tol + 1e-12), np.max(np.abs(r.map - expected) / (tol + 1e-300))
    # and it is not vacuous: a wrong depth would fail
    assert np.any(np.abs(r.map - expected * sigma ** 2) > tol)


def test_relu_halves_the_expected_squared_gradient_per_layer():
    """With zero biases and symmetric weights, each ReLU passes half the squared gradient: the map is
    2^-(ReLU layers) σ^{2L} paths (measured; positive homogeneity keeps the gate rate 1/2 everywhere)."""
    shape, sigma = (1, 24), 0.25
    net = nets.from_spec("4*conv3", shape, width=16, activation="relu")
    r = S.init_sensitivity(net, shape, to="each", n_inits=256, n_samples=2, std=sigma, dtype=F64, chunk=64)
    counts = pathways(net, shape, exact=True).counts.astype(float)
    ratio = r.map / (sigma ** 8 * counts)
    assert ratio.mean() == pytest.approx(0.5 ** 3, rel=0.1)
    assert np.abs(ratio / ratio.mean() - 1).max() < 0.25


# ------------------------------------------------------------------ perturbation

def test_perturbation_matches_the_gradient():
    net = nets.from_spec("conv3, maxpool2, conv3", (1, 12, 12), width=3, activation="tanh")
    p = S.perturbation(net, (1, 12, 12), eps=1e-5, n_signs=4000, seed=1)
    assert p.fd_error < 1e-6
    assert p.sign_correlation > 0.8
    assert p.total_change == pytest.approx(p.predicted_total, rel=0.1)
    g = S.gradient_map(net, _input((1, 12, 12), n=1, seed=1), agg="abs", dtype=F64)
    assert p.single.shape == (12, 12) and p.summary["single"]["center_corner_ratio"] > 1
    assert g.map.shape == p.single.shape


def test_perturbation_is_deterministic():
    net = nets.from_spec("2*conv3", (1, 8, 8))
    a = S.perturbation(net, (1, 8, 8), n_signs=64, seed=3)
    b = S.perturbation(net, (1, 8, 8), n_signs=64, seed=3)
    np.testing.assert_array_equal(a.random_signs, b.random_signs)
    np.testing.assert_array_equal(a.single, b.single)


class _Picky(nn.Module):
    """Runs at most ``most`` inputs at once: a larger batch fails as an allocation does (a model whose layers make
    more than their outputs, Gemma4-ViT's 32 GB at 256 nudged inputs)."""

    def __init__(self, most: int):
        super().__init__()
        self.most, self.conv = most, nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, x):
        if x.shape[0] > self.most:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory")
        return torch.tanh(self.conv(x))


def test_perturbation_halves_a_batch_that_does_not_fit_in_memory():
    torch.manual_seed(0)
    net = _Picky(8)
    big = S.perturbation(net, (1, 6, 6), n_signs=64, seed=2)  # (chunk 256: halved to 8)
    small = S.perturbation(net, (1, 6, 6), n_signs=64, seed=2, chunk=8)
    for k in ("single", "random_signs", "gradient"):
        np.testing.assert_array_equal(getattr(big, k), getattr(small, k))
    assert big.total_change == small.total_change

    def full(start, stop):
        raise MemoryError()

    def broken(start, stop):
        raise RuntimeError("shapes do not match")

    with pytest.raises(EdgewiseError, match="does not fit in memory even one nudged input at a time"):
        S._each_batch(10, 4, full)
    with pytest.raises(RuntimeError, match="shapes do not match"):  # (only a lack of memory is retried)
        S._each_batch(10, 4, broken)


def test_results_save_and_render(tmp_path):
    s = S.init_sensitivity("2*conv3", (1, 8, 8), n_inits=4)
    paths = s.save(tmp_path)
    assert {p.name for p in paths} == {"sensitivity.json", "sensitivity.map.npy", "sensitivity.stderr.npy",
                                       "sensitivity.samples.npy"}
    assert "center_corner_ratio" in s.to_json()
    assert "<img" in s._repr_html_()


# ------------------------------------------------------------------ real architectures

def test_torchvision_resnet_inner_layer_matches_finite_differences():
    tv = pytest.importorskip("torchvision")
    net = tv.models.resnet18(weights=None)
    x = _input((3, 16, 16), seed=4, n=1)
    s = S.gradient_map(net, x, to="center", agg="signed", layer="layer1", dtype=F64)
    _close(s.map, finite_difference_map(net, x, to="center", agg="signed", layer="layer1"))
    assert not any(m._forward_hooks for m in net.modules())


def test_init_sensitivity_on_batchnorm_models_restacks_buffers():
    tv = pytest.importorskip("torchvision")
    net = tv.models.mobilenet_v2(weights=None)
    r = S.init_sensitivity(net, (3, 32, 32), to="center", n_inits=3, chunk=2, layer="features.4")
    assert r.map.shape == (32, 32) and np.isfinite(r.map).all() and r.fixed == []


def test_a_layer_that_never_runs_is_an_error_and_leaves_no_hook():
    class Skips(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.unused = nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 1)

        def forward(self, x):
            return self.conv(x)

    net = Skips()
    with pytest.raises(EdgewiseError, match="was not called"):
        S.gradient_map(net, (1, 8, 8), layer="unused")
    assert not any(m._forward_hooks for m in net.modules())
