"""Weighted paths (:mod:`edgewise.weighted`): the path counts with each path weighted by its squared factors, the
expectation over weights that the Monte-Carlo sensitivity estimates."""

import copy
import doctest
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import edgewise
from edgewise import _init, models, weighted
from edgewise.errors import EdgewiseError
from edgewise.sensitivity import _init_seeds, init_sensitivity
from edgewise.testing.oracle import autograd_pathways
from edgewise.theory import mc_tolerance
from edgewise.weighted import weighted_map, weighted_pathways


def _mean_squares(net) -> list[float]:
    return [float((m.weight.detach().double() ** 2).mean()) for m in net.modules()
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d))]


def _drawn(net, seed: int, n: int = 1):
    """The model as ``weighted_pathways(net, ..., seed=seed)`` draws it for its first initialisation."""
    m = copy.deepcopy(net)
    _init.apply(m, _init.plan(m), _init_seeds(seed, n)[0])
    return m


@pytest.mark.parametrize("net, shape, pooled", [
    (nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(4, 3, 3, padding=1, stride=2), nn.AvgPool2d(2),
                   nn.Conv2d(3, 5, 3, padding=2, dilation=2)), (2, 16, 16), [4]),
    (nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 6, 3, padding=1, groups=3),
                   nn.Conv2d(6, 2, 3, padding=1, groups=2), nn.Conv2d(2, 2, 1)), (1, 12, 10), []),
    (nn.Sequential(nn.Conv1d(1, 3, 3, padding=1), nn.AvgPool1d(3, stride=1, padding=1), nn.Conv1d(3, 4, 3),
                   nn.Conv1d(4, 1, 5, padding=2)), (1, 24), [3]),
    (nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ConvTranspose2d(4, 6, 4, stride=2, padding=1, groups=2),
                   nn.ConvTranspose2d(6, 2, 3, stride=2, padding=1, output_padding=1)), (1, 8, 8), []),
])
def test_a_linear_net_weighs_each_path_by_its_layers_mean_squares(net, shape, pooled):
    """No data-dependent factor: each path weighs the product of its layers' mean squared weights, times (1/K)²
    per average-pool tap, so the map is that product times the path counts (autograd's all-ones copy)."""
    drawn = _drawn(net, 3)
    factor = math.prod(_mean_squares(drawn)) / math.prod(k * k for k in pooled)
    for to in ("all", "center"):
        w = weighted_pathways(net, shape, to=to, n_inits=1, seed=3)
        counts = np.asarray(autograd_pathways(drawn, shape, to=to), dtype=np.float64)
        np.testing.assert_allclose(w.map, counts * factor, rtol=1e-9, err_msg=to)


class _Fixed(nn.Module):
    """Multiplies by a fixed tensor: a data-dependent factor (a ReLU's 0/1 slopes, a gate) held at one value."""

    def __init__(self, shape, seed):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("d", torch.randn(shape, generator=g, dtype=torch.float64))

    def forward(self, x):
        return x * self.d


def test_the_expectation_over_fresh_weights_with_the_factors_held_is_the_weighted_map():
    """E_w[(∂Σy/∂x_p)²] over independent zero-mean weights, the other factors fixed, estimated by 3000 draws,
    equals the weighted map at every position (Bonferroni tolerance over them): the cross terms of distinct
    paths vanish, through zero padding, strides, a residual sum, a subsampling slice and fixed factors."""
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(1, 3, 3, padding=1, bias=False)
            self.d1 = _Fixed((1, 3, 8, 8), 1)
            self.b = nn.Conv2d(3, 3, 3, padding=1, bias=False)
            self.c = nn.Conv2d(3, 2, 3, padding=1, stride=2, bias=False)

        def forward(self, x):
            h = self.d1(self.a(x))
            return self.c((h + self.b(h))[..., ::2, 1::2])

    net = Net().double()
    x = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    rms = {n: float(p.detach().pow(2).mean().sqrt()) for n, p in net.named_parameters()}
    theory = weighted_map(net, x)[0].numpy()
    draws, gen = 3000, torch.Generator().manual_seed(1)
    squares = []
    for _ in range(draws):
        with torch.no_grad():
            for n, p in net.named_parameters():  # fresh directions, the same mean square (E[w_i w_j] = m δ_ij)
                fresh = torch.randn(p.shape, generator=gen, dtype=torch.float64)
                p.copy_(fresh * rms[n] / fresh.pow(2).mean().sqrt())
        xi = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(net(xi).sum(), xi)
        squares.append(g[0, 0].pow(2).numpy())
    squares = np.stack(squares)
    tol = mc_tolerance(squares.std(axis=0, ddof=1), draws, n_tests=squares[0].size)
    assert np.all(np.abs(squares.mean(axis=0) - theory) <= tol + 1e-12)
    assert theory.max() > 3 * theory.min() > 0  # (a map with a shape, not a constant)


def test_each_layer_kind_is_its_exact_squared_jacobian():
    """A layer with no random weight and one path from each input unit to each output unit: the weighted map is
    Σ_o (∂y_o/∂x_p)², taken from the full Jacobian (a softmax over channels too: a gate over branches)."""
    torch.manual_seed(0)
    layers = [nn.AvgPool2d(3, stride=2, padding=1), nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
              nn.AvgPool2d(2, ceil_mode=True), nn.AdaptiveAvgPool2d((3, 2)), nn.MaxPool2d(3, 2, padding=1),
              nn.AdaptiveMaxPool2d(2), nn.GELU(), nn.SiLU(), nn.LeakyReLU(0.2), nn.Hardswish(), nn.Tanh(),
              nn.BatchNorm2d(2).eval(), nn.Dropout(0.5).eval(), nn.ZeroPad2d((1, 0, 2, 1)),
              nn.ReflectionPad2d(1), nn.Upsample(scale_factor=2), nn.PixelUnshuffle(1), nn.Flatten(),
              nn.Softmax(dim=1)]
    bn = layers[11]
    with torch.no_grad():
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(-2, 2)
    x = torch.randn(1, 2, 7, 7, dtype=torch.float64)
    for layer in layers:
        layer = layer.double()
        jac = torch.autograd.functional.jacobian(layer, x)  # (out..., in...)
        expected = jac.reshape(-1, *x.shape).pow(2).sum(0).mean(1)[0]
        np.testing.assert_allclose(weighted_map(layer, x)[0].numpy(), expected.numpy(), rtol=1e-12, atol=1e-15,
                                   err_msg=str(layer))


_X = torch.cat([torch.randn(1000, generator=torch.Generator().manual_seed(0)) * 4,
                torch.tensor([0.0, 3, -3, 6, -6, -1, 1, 0.5, -0.5, 20])]).reshape(2, 5, 101)  # (kinks included)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("func, args, kwargs", [
    (F.silu, (), {}), (torch.sigmoid, (), {}), (torch.tanh, (), {}), (F.gelu, (), {}),
    (F.gelu, (), {"approximate": "tanh"}), (F.hardswish, (), {}), (F.hardsigmoid, (), {}), (F.relu6, (), {}),
    (F.hardtanh, (), {}), (F.hardtanh, (-0.5, 0.5), {}), (F.hardtanh, (), {"min_val": 0.0, "max_val": 3.0}),
    (F.leaky_relu, (0.2,), {}), (F.leaky_relu, (), {"negative_slope": 0.3}), (F.leaky_relu, (), {}),
    (torch.Tensor.sigmoid_, (), {}), (torch.Tensor.tanh_, (), {}), (F.hardtanh_, (0.0, 6.0), {})])
def test_the_activations_slopes_from_their_backward_kernels_are_autograds_bit_for_bit(func, args, kwargs, dtype):
    x = _X.to(dtype)
    assert weighted._name(func) in weighted._BACKWARD  # (the fast path, not the autograd fallback)
    with torch.enable_grad():
        leaf = x.clone().requires_grad_(True)
        (expected,) = torch.autograd.grad(func(leaf.clone(), *args, **kwargs).sum(), leaf)
    assert torch.equal(weighted._slope(func, (x, *args), kwargs), expected)


@pytest.mark.parametrize("kernel, stride, padding", [
    ((3,), 1, 1), ((5,), 2, 4), ((3, 3), 1, 1), ((3, 3), 2, 1), ((7, 7), 2, 3), ((1, 1), 2, 0),
    ((3, 5), (1, 2), (2, 0)), ((4, 4), 4, 0), ((3, 3), 1, 2), ((2, 3, 3), (1, 2, 2), (1, 1, 1))])
def test_a_convolutions_window_sums_are_its_all_ones_convolution(kernel, stride, padding):
    """The weights a convolution's windows gather (each tap's mean square times their box sum) come from one sum
    pool, padding beyond half the window included; torch's grouped float64 convolution ran a call per group."""
    nd = len(kernel)
    v = torch.rand((2, 6, *[9 - i for i in range(nd)]), dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    conv = getattr(F, f"conv{nd}d")(v, torch.ones((6, 1, *kernel), dtype=torch.float64), None, stride, padding,
                                     groups=6)
    torch.testing.assert_close(weighted._sum_pool(v, kernel, stride, padding), conv, rtol=1e-14, atol=0)
    assert weighted._sum_pool(v, kernel, stride, "same") is None and weighted._sum_pool(v, kernel, 1, 0, 2) is None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape", [(64, 9), (300, 64, 3, 3)])
def test_a_layers_mean_square_is_float64s_to_float32_rounding(shape, dtype):
    """Exact below 65536 entries; above, from float32 row norms (a half precision weight's too)."""
    w = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(dtype)
    exact = float((w.double() ** 2).mean())
    assert float(weighted._mean_square(w)) == pytest.approx(exact, rel=1e-14 if w.numel() <= 1 << 16 else 1e-6)


def test_a_functional_forward_and_written_out_layers_follow_the_same_rules():
    """F.relu in place, a product with a layer scale, x·x, a mean over the positions, a norm over them, a
    layer norm on channels-last tokens and ``x @ W`` with W a parameter: each rule, worked out by hand."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.full((1, 3, 1, 1), 1e-3, dtype=torch.float64))
            self.w = nn.Parameter(torch.randn(3, 4, dtype=torch.float64))
            self.ln = nn.LayerNorm(3).double()

        def forward(self, x):
            h = torch.nn.functional.relu(x.clone(), inplace=True) * self.scale + x * x
            h = self.ln(h.permute(0, 2, 3, 1))  # (B, H, W, C)
            return (h @ self.w).mean((1, 2)) + torch.linalg.vector_norm(x, dim=(2, 3)).sum(1, keepdim=True)

    torch.manual_seed(0)
    net = Net()
    x = torch.randn(1, 3, 5, 5, dtype=torch.float64)
    got = weighted_map(net, x)[0]
    # by hand: the Linear's weights redrawn with mean square m, every other factor as it is in this forward
    m = float(net.w.detach().pow(2).mean())
    xs = x[0]
    # h's two paths from a unit, through the ReLU and the scale and through x·x, re-merge with no random weight
    # between them: their squared factors add (the cross term is what the weighted map leaves out)
    slope_h = ((xs > 0).double() * 1e-3) ** 2 + (2 * xs) ** 2
    hp = (torch.relu(xs) * 1e-3 + xs * xs).permute(1, 2, 0)
    ln_scale = 1 / torch.sqrt(hp.var(-1, unbiased=False, keepdim=True) + 1e-5) * net.ln.weight.detach()
    head = ln_scale.permute(2, 0, 1) ** 2 * slope_h * m * 4 / 25 ** 2  # 4 outputs, a mean over 25 positions
    norm = 4 * (xs / torch.linalg.vector_norm(xs, dim=(1, 2), keepdim=True)) ** 2  # (added to each of 4 outputs)
    np.testing.assert_allclose(got.numpy(), (head + norm).mean(0).numpy(), rtol=1e-10)


def test_the_weighted_map_is_the_sensitivitys_expectation_on_resnets():
    """torchvision's ResNet-18 at 32 px: at the same 8 initialisations the Monte-Carlo map's log correlates with
    the weighted map's at r > 0.9, and their centre/corner ratios agree within a factor of 2."""
    tv = pytest.importorskip("torchvision")
    from edgewise.maps import log_correlation

    net = tv.models.resnet18()
    s = init_sensitivity(net, (3, 32, 32), n_inits=8)
    w = weighted_pathways(net, (3, 32, 32), n_inits=8)
    assert log_correlation(s.map, w.map) > 0.9
    ratio = w.summary["center_corner_ratio"] / s.summary["center_corner_ratio"]
    assert 0.5 < ratio < 2, ratio


def test_zero_weight_norms_give_their_paths_weight_zero():
    """timm's SE-ResNet-18 starts the last norm of each residual branch at weight 0: the weighted map is zero at
    exactly the positions where the Monte-Carlo sensitivity is (the cut of edgewise.live, without a cut)."""
    pytest.importorskip("timm")
    net = models.load("timm:seresnet18")
    s = init_sensitivity(net, (3, 64, 64), n_inits=4)
    w = weighted_pathways(net, (3, 64, 64), n_inits=2)
    assert (s.map == 0).sum() == 3807
    assert np.array_equal(w.map == 0, s.map == 0)


class _Upsampled(nn.Module):
    """A trilinear up-sampling of a 2-D map seen as 3-D, for which there is no rule."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)

    def init_weights(self):  # (its own initialisation: no warning that it is unknown)
        self.conv.reset_parameters()

    def forward(self, x):
        return torch.nn.functional.interpolate(self.conv(x)[:, None], scale_factor=2, mode="trilinear")


def test_an_op_without_a_rule_is_refused_by_name():
    with pytest.raises(EdgewiseError, match="no rule for interpolate\\(mode='trilinear'\\)"):
        weighted_pathways(_Upsampled(), (1, 4, 4), n_inits=1)


def test_bad_arguments_say_what_to_pass_and_each_unit_is_all():
    """The weighted map already sums each unit's expected squared gradient: to="each" (what the Monte-Carlo
    sensitivity estimates with one random-sign pass) is to="all"."""
    np.testing.assert_array_equal(weighted_pathways("3*conv3", (1, 8, 8), to="each", n_inits=2).map,
                                  weighted_pathways("3*conv3", (1, 8, 8), to="all", n_inits=2).map)
    with pytest.raises(EdgewiseError, match="expected 'all', 'center', 'each'"):
        weighted_pathways("3*conv3", (1, 8, 8), to="middle")
    with pytest.raises(EdgewiseError, match="n_inits=0"):
        weighted_pathways("3*conv3", (1, 8, 8), n_inits=0)


def test_a_copy_on_another_device_gets_every_initialisation_and_bad_devices_are_refused(monkeypatch):
    """Weights are drawn on the CPU; where the passes run elsewhere, a copy of the model gets each initialisation's
    parameters and buffers (here forced on the CPU: the maps are the same, bit for bit, as without the copy)."""
    tv = pytest.importorskip("torchvision")
    net = tv.models.resnet18(num_classes=5)  # (BatchNorm: buffers too)
    plain = weighted_pathways(net, (3, 16, 16), n_inits=3, init="default")
    assert np.array_equal(weighted_pathways(net, (3, 16, 16), n_inits=3, device="cpu", init="default").map, plain.map)
    monkeypatch.setattr(weighted, "_runner", lambda template, device: copy.deepcopy(template))
    copied = weighted_pathways(net, (3, 16, 16), n_inits=3, init="default")
    assert np.array_equal(copied.samples, plain.samples)
    with pytest.raises(EdgewiseError, match="^weighted paths: device='meta' holds shapes but no numbers"):
        weighted_pathways("3*conv3", (1, 8, 8), device="meta")
    with pytest.raises(EdgewiseError, match="^weighted paths: device='gpu' is not a torch device"):
        weighted_pathways("3*conv3", (1, 8, 8), device="gpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
@pytest.mark.parametrize("name", ["resnet18", "swin_t", "efficientnet_b0"])
def test_on_cuda_the_maps_are_the_cpus(name):
    """The same draws, run on the GPU (convolutions, attention, interpolation, pools): the CPU's maps to float
    rounding, and a CUDA model runs there without being asked."""
    tv = pytest.importorskip("torchvision")
    net = tv.models.get_model(name, num_classes=5)
    cpu = weighted_pathways(net, (3, 32, 32), n_inits=2)
    for kwargs, model in (({"device": "cuda"}, net), ({}, copy.deepcopy(net).cuda())):
        np.testing.assert_allclose(weighted_pathways(model, (3, 32, 32), n_inits=2, **kwargs).map, cpu.map,
                                   rtol=1e-4, atol=1e-300)


def test_it_is_exported_and_its_example_runs():
    assert edgewise.weighted_pathways is weighted_pathways
    result = doctest.testmod(weighted, extraglobs={"weighted_pathways": weighted_pathways})
    assert result.attempted >= 1 and result.failed == 0


# ------------------------------------------------------------------ on the page, in the answer and the CLI

def _facts_for(measured, weighted_map, n_inits=4):
    from edgewise.sensitivity import _from_samples
    from edgewise.weighted import weighted_facts

    w = _from_samples(np.asarray(weighted_map, dtype=np.float64)[None])
    w.n_inits = n_inits
    return weighted_facts(measured, w)


def test_the_verdicts_weighted_sentence_is_read_back_from_the_saved_maps(tmp_path):
    """Each number of the sentence is a claim the checker recomputes from the saved weighted and sensitivity maps:
    change a map and the claims it no longer supports are named."""
    import json

    from edgewise.report.verdict import _weighted
    from edgewise.testing.claims import _SPAN, _check_claim

    rng = np.random.default_rng(0)
    measured = rng.uniform(1, 2, (9, 9))
    measured[:, :3] = 0
    w = measured * rng.uniform(0.8, 1.2, (9, 9))
    np.save(tmp_path / "sensitivity_init.map.npy", measured)
    np.save(tmp_path / "weighted_pathways.map.npy", w)
    (tmp_path / "weighted_pathways.json").write_text(json.dumps({"n_inits": 4}))
    q4 = {"weighted_paths": _facts_for(measured, w), "interval95": [2.0, 5.5]}

    def problems():
        block = _weighted(q4, "px", "corner")
        return block, [p for kind, key, of, text in _SPAN.findall(block) if kind == "claim"
                       for p in _check_claim(key, of, tmp_path, {}, {}, text)]

    block, found = problems()
    assert found == [], found
    for claim in ("weighted-inits", "weighted-ratio", "measured-ratio", "weighted-same-zeros", "weighted-r"):
        assert f'data-claim="{claim}"' in block
    assert "zero at <span" in block and "exactly the 27 px</span> where the sensitivity is zero" in block
    # the measured ratio's interval, read from verdict.json as the sensitivity's own sentence reads it
    assert ('(95 % interval <span class="num" data-field="q4.interval95.0">2×</span> … '
            '<span class="num" data-field="q4.interval95.1">5.5×</span>)') in block
    w2 = w.copy()
    w2[0, 0] = 5.0  # a zero less, another centre/corner ratio and correlation
    np.save(tmp_path / "weighted_pathways.map.npy", w2)
    _, found = problems()
    assert any("weighted-ratio" in p for p in found) and any("zero at [27]" in p for p in found), found
    assert any("weighted-r" in p for p in found)
    np.save(tmp_path / "sensitivity_init.map.npy", measured * 2 + (measured > 0) * np.arange(81).reshape(9, 9))
    np.save(tmp_path / "weighted_pathways.map.npy", w)
    _, found = problems()
    assert any("measured-ratio" in p for p in found), found
    zero = np.zeros((9, 9))  # a head of zero weights: "zero at every position, as the sensitivity is"
    np.save(tmp_path / "sensitivity_init.map.npy", zero)
    np.save(tmp_path / "weighted_pathways.map.npy", zero)
    q4["weighted_paths"] = _facts_for(zero, zero)
    block, found = problems()
    assert found == [] and 'data-claim="weighted-all-zero"' in block
    np.save(tmp_path / "weighted_pathways.map.npy", zero + np.eye(9))
    _, found = problems()
    assert found == ["says the weighted map is zero everywhere; 9 positions are not"]


def test_the_verdict_says_why_they_are_not_computed():
    from edgewise.report.verdict import _weighted

    said = _weighted({"weighted_refused": "no rule for 'lstm' in <Seq>"}, "px", "corner")
    assert said == "Weighted paths are not computed for this model: no rule for &#x27;lstm&#x27; in &lt;Seq&gt;. "
    assert _weighted({}, "px", "corner") == ""  # (a verdict saved before they were computed)


def test_the_words_follow_the_maps():
    """Uniform: "the same value at every position (max = min)", no ratio; zeros elsewhere than the sensitivity's:
    both counts; a constant map: no r."""
    from edgewise.facts import weighted_words

    m = np.arange(1.0, 17.0).reshape(4, 4)
    assert "the same value at every position (max = min)" in weighted_words(_facts_for(m, np.ones((4, 4))), "px",
                                                                            "corner")
    zero = np.zeros((4, 4))  # (a head of zero weights: torchvision's ViT)
    assert weighted_words(_facts_for(zero, zero), "px", "corner").endswith("gives zero at every position, as the "
                                                                           "sensitivity is")
    assert "zero at every position (the sensitivity at 0 px)" in weighted_words(_facts_for(m, zero), "px", "corner")
    w = m.copy()
    w[0, 0] = 0
    said = weighted_words(_facts_for(m, w), "px", "corner")
    assert "zero at 1 px (the sensitivity at 0 px)" in said and "r = " in said
    assert "exactly" not in said


def test_a_report_says_it_and_passes_its_checker(tmp_path):
    """A report on a spec net: the theory answer sets the weighted paths against the sensitivity, the saved maps
    are there, the figure draws them, and every claim holds."""
    from edgewise.report import build
    from edgewise.testing.claims import check_report

    build(["6*conv3"], [(1, 16, 16)], out=tmp_path, n_inits=4, remedy_inits=0, progress=False)
    assert check_report(tmp_path) == []
    page = (tmp_path / "index.html").read_text()
    assert 'data-claim="weighted-r"' in page and "the expectation over fresh weights with those held" in page
    assert list(tmp_path.glob("data/*/weighted_pathways.map.npy"))
    assert "weighted paths" in page  # (the sensitivity figure's caption names the curve)


def test_the_answer_and_the_cli_say_it_or_why_not(capsys, tmp_path):
    from edgewise.answer import answer
    from edgewise.cli import main

    a = answer("6*conv3", (1, 16, 16), n_inits=4, perturb=False)
    f = a.facts["init_sensitivity"]["weighted_paths"]
    assert f["n_inits"] == 4 and f"r = {f['log_correlation']:.2f}" in a.text
    assert main(["sensitivity", "6*conv3", "--input", "1x16x16", "--inits", "4", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Weighting each path by its layers' mean squared weights" in out
    assert (tmp_path / "weighted_pathways.map.npy").exists()

    a = answer(_Upsampled(), (1, 4, 4), n_inits=2, perturb=False, name="upsampled")
    assert a.facts["init_sensitivity"]["weighted_paths"] is None
    assert "Weighted paths are not computed for this model: no rule for interpolate(mode='trilinear')." in a.text


def test_the_cli_weighs_the_sensitivitys_own_draws(capsys, monkeypatch):
    """`edgewise sensitivity` draws a builder's initialisations once: the weighted paths copy the Monte-Carlo
    sensitivity's (every one a hit of the shared store), and say what a separate call says."""
    import json
    from contextlib import contextmanager

    from edgewise.cli import main

    pytest.importorskip("torchvision")
    stores, real = [], _init.shared_draws

    @contextmanager
    def spy(*args, **kwargs):
        with real(*args, **kwargs) as store:
            stores.append(store)
            yield store

    monkeypatch.setattr(_init, "shared_draws", spy)
    assert main(["sensitivity", "torchvision:resnet18", "--input", "3x16x16", "--inits", "4", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (stores[-1].misses, stores[-1].hits) == (4, 4)
    alone = weighted_pathways("torchvision:resnet18", (3, 16, 16), n_inits=4)
    assert got["weighted_paths"] == weighted.weighted_facts(np.asarray(got["sensitivity"]["map"]), alone)


# ------------------------------------------------------------------ attention: its weights held

class _Tokens(nn.Module):
    """A 4×4 image as 16 tokens of 6 channels, one attention layer in one of three spellings, a mean."""

    def __init__(self, how: str):
        super().__init__()
        self.how, self.embed = how, nn.Conv2d(1, 6, 1)
        self.mha = nn.MultiheadAttention(6, 2, batch_first=True)

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)  # (B, 16, 6)
        if self.how == "module":
            return self.mha(t, t, t, need_weights=False)[0].mean(1)
        w_q, w_k, w_v = self.mha.in_proj_weight.chunk(3)
        b_q, b_k, b_v = self.mha.in_proj_bias.chunk(3)
        heads = (lambda u: u.reshape(u.shape[0], u.shape[1], 2, 3).transpose(1, 2))
        q, k, v = (heads(torch.nn.functional.linear(t, w, b)) for w, b in ((w_q, b_q), (w_k, b_k), (w_v, b_v)))
        if self.how == "sdpa":
            o = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        else:
            o = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(3), dim=-1) @ v
        o = o.transpose(1, 2).reshape(t.shape)
        return self.mha.out_proj(o).mean(1)


def test_attention_holds_its_weights_in_every_spelling():
    """nn.MultiheadAttention, scaled_dot_product_attention and softmax(q @ kᵀ) @ v written out give the same map;
    it weighs each value path by the square of its attention weight (worked out by hand for the written-out one)."""
    torch.manual_seed(0)
    net = _Tokens("module").double()
    x = torch.randn(1, 1, 4, 4, dtype=torch.float64)
    maps = {}
    for how in ("module", "sdpa", "written"):
        net.how = how
        maps[how] = weighted_map(net, x)[0]
    np.testing.assert_allclose(maps["sdpa"].numpy(), maps["written"].numpy(), rtol=1e-12)
    np.testing.assert_allclose(maps["module"].numpy(), maps["written"].numpy(), rtol=1e-12)
    # by hand: token j's weight reaches output token i of head h through A_h[i, j]²
    with torch.no_grad():
        t = net.embed(x).flatten(2).transpose(1, 2)[0]
        w_q, w_k, w_v = net.mha.in_proj_weight.chunk(3)
        b_q, b_k, _ = net.mha.in_proj_bias.chunk(3)
        q, k = ((t @ w.T + b).reshape(16, 2, 3).transpose(0, 1) for w, b in ((w_q, b_q), (w_k, b_k)))
        a = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(3), dim=-1)  # (2, 16, 16)
        m = [float((w.double() ** 2).mean()) for w in (net.embed.weight, w_v, net.mha.out_proj.weight)]
        # a value unit sums 6 embedding channels (6·m0·m1), passes A² of its head; an output channel sums the 3
        # value units of each head (3·m2); 6 output channels; the mean over 16 tokens: 1/16²
        per_token = (a ** 2).sum(dim=(0, 1)) * 6 * m[0] * m[1] * 3 * m[2] * 6 / 16 ** 2
    np.testing.assert_allclose(maps["written"].reshape(-1).numpy(), per_token.numpy(), rtol=1e-10)


class _ContextPool(nn.Module):
    """GCNet's context pooling written out: a softmax over every position of a 1×1 convolution weighs the values,
    scaled, in either orientation of the product; ``held`` detaches the weights (a constant of the same value)."""

    def __init__(self, weights_first: bool, held: bool):
        super().__init__()
        self.weights_first, self.held = weights_first, held
        self.conv, self.attn, self.mix = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 1, 1), nn.Conv2d(4, 4, 1)

    def forward(self, x):
        x = self.conv(x)
        b, c, h, w = x.shape
        a = torch.softmax(self.attn(x).reshape(b, 1, h * w), dim=-1)
        a = a.detach() if self.held else a
        if self.weights_first:
            ctx = (a.unsqueeze(2) * 2.0) @ x.reshape(b, c, h * w).transpose(1, 2)  # (B, 1, 1, C)
        else:
            ctx = x.reshape(b, c, h * w).unsqueeze(1) @ (a.unsqueeze(3) * 2.0)  # (B, 1, C, 1)
        return x + self.mix(ctx.reshape(b, c, 1, 1))


@pytest.mark.parametrize("weights_first", [False, True])
def test_generated_attention_weights_are_held_like_a_constant_of_their_value(weights_first):
    """A softmax of an input-dependent tensor that is not scores, moved and scaled into a product with the values
    (GCNet, VOLO), is held at its value: the map is the one of the same net with the weights detached."""
    made = weighted_pathways(_ContextPool(weights_first, held=False), (1, 6, 5), n_inits=3, init="default")
    held = weighted_pathways(_ContextPool(weights_first, held=True), (1, 6, 5), n_inits=3, init="default")
    np.testing.assert_allclose(made.map, held.map, rtol=1e-12)
    assert made.map.min() > 0


def test_scores_used_as_data_are_refused_and_heads_mixed_stay_scores():
    class Linearised(nn.Module):
        def forward(self, x):
            t = x.flatten(2).transpose(1, 2)
            return torch.relu(t @ t.transpose(1, 2)) @ t

    with pytest.raises(EdgewiseError, match="no rule for 'relu' applied to a product of two input-dependent"):
        weighted_map(Linearised(), torch.randn(1, 2, 3, 3))

    class LinearAttention(nn.Module):  # (CoaT's factorised attention: kᵀv weighs q with no softmax over it)
        def forward(self, x):
            t = x.flatten(2).transpose(1, 2)
            return t @ (torch.softmax(t, dim=1).transpose(1, 2) @ t)

    with pytest.raises(EdgewiseError, match="of a product of softmax weights with the values \\(linear attention"):
        weighted_map(LinearAttention(), torch.randn(1, 2, 3, 3))

    class TalkingHeads(nn.Module):  # (CaiT: a Linear mixes the heads' scores; they stay attention weights)
        def __init__(self):
            super().__init__()
            self.mix = nn.Linear(2, 2)

        def forward(self, x):
            t = x.flatten(2).transpose(1, 2)[:, None].expand(-1, 2, -1, -1)  # (B, 2 heads, 9, 2)
            scores = self.mix((t @ t.transpose(-2, -1)).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            return torch.softmax(scores, -1) @ t

    assert weighted_map(TalkingHeads(), torch.randn(1, 2, 3, 3)).min() > 0


def test_casts_keep_the_weights_and_an_item_assignment_writes_them():
    """``x.float()`` leaves the weights in float64; ``x[..., :2] = y`` gives those units y's weights."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 2, 1, bias=False), nn.Conv2d(1, 2, 1, bias=False)

        def forward(self, x):
            h = self.a(x).float()
            h[..., :2] = self.b(x)[..., :2] * 3
            return h

    net = Net()
    x = torch.randn(1, 1, 3, 4)
    got = weighted_map(net, x)[0]
    assert got.dtype == torch.float64
    ms = [float((m.weight.detach().double() ** 2).mean()) for m in (net.a, net.b)]
    expected = torch.full((3, 4), 2 * ms[0], dtype=torch.float64)
    expected[:, :2] = 2 * 9 * ms[1]
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-6)


@pytest.mark.parametrize("options", [dict(scale_factor=2, mode="bilinear"), dict(scale_factor=1.5, mode="bilinear"),
                                     dict(size=(7, 9), mode="bilinear", align_corners=True),
                                     dict(scale_factor=(0.7, 1.3), mode="bicubic"), dict(size=(3, 4), mode="area"),
                                     dict(scale_factor=2, mode="nearest"), dict(size=(7, 7), mode="nearest-exact")])
def test_interpolation_squares_each_axis_matrix(options):
    """Each output of an interpolation mixes inputs with fixed coefficients (one path each): the weighted map is
    the squared Jacobian's sum over the outputs, also where a scale factor maps the coordinates (1.5 on 5 px)."""
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64)

    def up(t):
        return torch.nn.functional.interpolate(t, **options)

    jac = torch.autograd.functional.jacobian(up, x)
    expected = jac.reshape(-1, *x.shape).pow(2).sum(0).mean(1)[0]
    np.testing.assert_allclose(weighted_map(up, x)[0].numpy(), expected.numpy(), rtol=1e-12, atol=1e-15)


def test_einsum_squares_its_constants_and_grouped_query_attention_shares_its_heads():
    """``einsum`` with one input-dependent operand: its squared Jacobian (one path per pair); grouped-query
    attention (4 query heads on 2 key/value heads): the map of its heads repeated by hand."""
    torch.manual_seed(0)
    x = torch.randn(1, 3, 4, 5, dtype=torch.float64)
    c = torch.randn(5, 6, dtype=torch.float64)

    def mix(t):
        return torch.einsum("bchw,wk->bchk", t, c)

    jac = torch.autograd.functional.jacobian(mix, x)
    np.testing.assert_allclose(weighted_map(mix, x)[0].numpy(),
                               jac.reshape(-1, *x.shape).pow(2).sum(0).mean(1)[0].numpy(), rtol=1e-12)
    q, k = torch.randn(1, 4, 6, 3, dtype=torch.float64), torch.randn(1, 2, 6, 3, dtype=torch.float64)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    v = torch.randn(1, 2, 6, 3, dtype=torch.float64)
    grouped = weighted_map(lambda t: sdpa(q, k, t, enable_gqa=True), v)
    repeated = weighted_map(lambda t: sdpa(q, k.repeat_interleave(2, 1), t.repeat_interleave(2, 1)), v)
    np.testing.assert_allclose(grouped.numpy(), repeated.numpy(), rtol=1e-12)


def test_the_readme_table_script_runs(tmp_path):
    """``examples/weighted_paths.py`` (the README's table), on one model at a small size."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("torchvision")
    script = Path(__file__).resolve().parents[1] / "examples" / "weighted_paths.py"
    done = subprocess.run([sys.executable, str(script), "--models", "torchvision:resnet18", "--input", "3x32x32",
                           "--inits", "4", "--weighted-inits", "2", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    (row,) = json.loads((tmp_path / "weighted_paths.json").read_text())["rows"]
    assert row["model"] == "torchvision:resnet18" and -1 <= row["r_weighted"] <= 1 and row["r_live"] is None
    assert "torchvision:resnet18" in done.stdout


def test_the_weighted_paths_take_every_initialisation_of_a_small_net_and_eight_of_a_large_one():
    """Below 100 MFLOP a forward pass every initialisation of the sensitivity (the built-in net: 31× at 8, 26.5× at
    32); above, the first 8 (ResNet-18 at 64 px: 0.15 GFLOP), each costing what a Monte-Carlo one does."""
    tv = pytest.importorskip("torchvision")
    from edgewise import nets
    from edgewise.answer import WEIGHTED_INITS, weighted_inits

    assert weighted_inits(nets.from_spec("6*conv3", (1, 16, 16)), (1, 16, 16), 32) == 32
    assert weighted_inits(tv.models.resnet18(), (3, 64, 64), 32) == WEIGHTED_INITS == 8
    assert weighted_inits(tv.models.resnet18(), (3, 64, 64), 4) == 4
