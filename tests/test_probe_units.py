"""Padding-aware units (edgewise.probe.units): the planted detector, the border masks, ablation, results."""

import dataclasses
import itertools

import numpy as np
import pytest
import torch
import torch.nn as nn

import edgewise
from edgewise.errors import EdgewiseError
from edgewise.probe.units import Ablation, PaddingUnits, ablate, layer_geometry, side_masks, units
from edgewise.testing.planted import PLANTED, planted_detector

N = 24


@pytest.fixture(scope="module")
def planted():
    model, shape, target = planted_detector("zeros")
    return model, shape, target, units(model, shape, n=N, progress=False)


@pytest.fixture(scope="module")
def circular():
    model, shape, target = planted_detector("circular")
    return model, shape, target, units(model, shape, n=N, progress=False)


# ------------------------------------------------------------------------------------------ acceptance

def test_planted_unit_is_found_and_ranked_first(planted):
    _, _, (layer, channel), r = planted
    assert len(r.found) >= 1
    top = r.unit(int(r.found[0]))
    assert (top["layer"], top["channel"]) == (layer, channel) == ("conv2", PLANTED)
    assert top["effect"] > 0 and top["consistency"] == 1.0
    assert set(top["sides"]) == {"top", "bottom", "left", "right"}


def test_circular_twin_has_no_padding_aware_unit(circular):
    _, _, _, r = circular
    assert r.summary["units"] == 0 and len(r.found) == 0
    assert r.status[:2] == ["analysed", "analysed"]  # the layers were measured, not skipped
    k = np.flatnonzero((r.unit_layer == r.layers.index("conv2")) & (r.unit_channel == PLANTED))[0]
    assert np.all(r.effect[k] == 0)  # the planted filter sees a constant all round


def test_planted_net_is_what_it_says():
    model, shape, _ = planted_detector()
    x = torch.rand(3, *shape)
    with torch.no_grad():
        planted_map = model.conv2(model.relu1(model.conv1(x)))[:, PLANTED]
    assert torch.equal(planted_map[:, 1:-1, 1:-1], torch.zeros(3, 26, 26))
    assert torch.equal(planted_map[:, 0, 1:-1], torch.full((3, 26), 3.0))
    assert float(planted_map[0, 0, 0]) == 5.0
    again, _, _ = planted_detector()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


# ------------------------------------------------------------------------------------------ border masks

def _union_by_running(module: nn.Module, shape) -> np.ndarray:
    """Positions that read padding, by running the real layers with all-one weights on an all-one input: an
    output short of the full tap count read zeros from the padding."""
    model = _ones(module)
    with torch.no_grad():
        y = model(torch.ones(1, *shape))[0, 0].numpy()
    return y < y.max() - 1e-6


def _ones(module: nn.Module) -> nn.Module:
    import copy

    model = copy.deepcopy(module)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.modules.conv._ConvNd):
                mod.weight.fill_(1.0)
                if mod.bias is not None:
                    mod.bias.zero_()
    return model


def _sides_by_enumeration(conv: nn.Module, pads, content) -> np.ndarray:
    """Per side, the output positions one of whose taps falls before / after the map, tap by tap."""
    nd = len(content)
    k, s, d = conv.kernel_size, conv.stride, conv.dilation
    out = [(content[a] + sum(pads[a]) - d[a] * (k[a] - 1) - 1) // s[a] + 1 for a in range(nd)]
    masks = np.zeros((2 * nd, *out), bool)
    for pos in itertools.product(*[range(n) for n in out]):
        for a in range(nd):
            for j in range(k[a]):
                i = pos[a] * s[a] - pads[a][0] + j * d[a]
                if i < 0:
                    masks[(2 * a, *pos)] = True
                if i >= content[a]:
                    masks[(2 * a + 1, *pos)] = True
    return masks


CASES = {
    "stride 2": (lambda: nn.Sequential(nn.Conv2d(1, 1, 3, stride=2, padding=1)), (1, 9, 10), ((1, 1), (1, 1))),
    "dilation 2": (lambda: nn.Sequential(nn.Conv2d(1, 1, 3, dilation=2, padding=2)), (1, 11, 8), ((2, 2), (2, 2))),
    "uneven ZeroPad2d": (lambda: nn.Sequential(nn.ZeroPad2d((0, 1, 2, 0)), nn.Conv2d(1, 1, 3, stride=2)),
                         (1, 10, 9), ((2, 0), (0, 1))),
    "stride 3, 5 taps, 1-D": (lambda: nn.Sequential(nn.Conv1d(1, 1, 5, stride=3, padding=(2,))), (1, 13),
                              ((2, 2),)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_side_masks_match_brute_force(case):
    build, shape, pads = CASES[case]
    model = build()
    conv_name = [n for n, m in model.named_modules() if isinstance(m, nn.modules.conv._ConvNd)][0]
    geom = layer_geometry(edgewise.trace(model, shape), conv_name)
    assert geom.pad == pads
    masks = side_masks(geom)
    np.testing.assert_array_equal(masks, _sides_by_enumeration(dict(model.named_modules())[conv_name], pads,
                                                               shape[1:]))
    np.testing.assert_array_equal(masks.any(0), _union_by_running(model, shape))
    assert (~masks.any(0)).any()  # an interior exists in every case


# ------------------------------------------------------------------------------------------ results

def test_deterministic_and_cached(tmp_path):
    model, shape, _ = planted_detector(seed=3)
    a = units(model, shape, n=8, seed=1, progress=False)
    b = units(model, shape, n=8, seed=1, progress=False, cache=tmp_path)
    c = units(model, shape, n=8, seed=1, progress=False, cache=tmp_path)  # read back
    for r in (b, c):
        for f in dataclasses.fields(PaddingUnits):
            va, vr = getattr(a, f.name), getattr(r, f.name)
            if isinstance(va, np.ndarray):
                np.testing.assert_array_equal(va, vr)
            else:
                assert va == vr, f.name
    assert c.text() == a.text()
    ab1 = ablate(model, a, shape, n=8, progress=False, cache=tmp_path)
    ab2 = ablate(model, a, shape, n=8, progress=False, cache=tmp_path)
    assert isinstance(ab2, Ablation)
    np.testing.assert_array_equal(ab1.pan_profile, ab2.pan_profile)
    assert ab1.text() == ab2.text()
    assert len(list(tmp_path.iterdir())) == 2


def test_bad_input(planted):
    model, shape, _, found = planted
    with pytest.raises(EdgewiseError, match="threshold must be a positive"):
        units(model, shape, n=4, threshold=0, progress=False)
    with pytest.raises(EdgewiseError, match="consistency must be a share"):
        units(model, shape, n=4, consistency=1.5, progress=False)
    with pytest.raises(EdgewiseError, match="has no layer 'conv9'"):
        units(model, shape, n=4, layers=["conv9"], progress=False)
    with pytest.raises(EdgewiseError, match="how='drop' is unknown"):
        ablate(model, found, shape, n=4, how="drop", progress=False)
    other, _, _ = planted_detector(seed=1)
    with pytest.raises(EdgewiseError, match="found on another model"):
        ablate(other, found, shape, n=4, progress=False)
    with pytest.raises(EdgewiseError, match="not a sliding-window convolution"):
        layer_geometry(edgewise.trace(model, shape), "relu1")


def test_text_follows_the_data(planted, circular):
    r, none = planted[3], circular[3]
    assert any(t.startswith("No padding-aware unit found") for t in none.text())
    assert not any("No padding-aware unit" in t for t in r.text())
    assert r.text()[0].startswith("1 of 32 filters (3.1 %)") and "is a padding-aware unit" in r.text()[0]
    assert "channel 5 of conv2: excited where its window reads the top padding" in r.text()[2]
    assert "0 units mark a single side and 1 every side" in r.text()[3]
    assert "reads no padding (1)" in r.text()[-1]
    # the same data with a stricter consistency than any unit meets: the sentences change with it
    strict = dataclasses.replace(r, effect=-r.effect)
    assert "suppressed where its window reads" in strict.text()[2]
    higher = dataclasses.replace(r, threshold=1e9)
    assert higher.text()[0].startswith("No padding-aware unit found") and "1e+09" in higher.text()[0]


def test_one_by_one_layers_are_reported_not_measured():
    net = edgewise.nets.from_spec("conv3/c4, conv1/c4, gap, fc3", (1, 12, 12), bias=True)
    r = units(net, (1, 12, 12), data="noise", n=6, progress=False)
    assert r.status == ["analysed", "reads no padding"]
    assert set(r.unit_layer.tolist()) == {0} and len(r.unit_channel) == 4


# ------------------------------------------------------------------------------------------ ablation

def _hooks(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.mark.parametrize("how", ["mean", "continued", "zero"])
def test_ablating_the_planted_unit_changes_only_the_border(planted, how):
    model, shape, _, found = planted
    ab = ablate(model, found, shape, n=8, how=how, progress=False)
    pan, _ = ab.profile("pan")
    assert pan[0] > 0.5 and np.all(ab.pan_profile[:, 1:] == 0)  # conv3 is 1×1: only the outer ring moves
    if how == "continued":  # only the border of the silenced units is replaced: the control's interior stays too
        assert np.all(ab.control_profile[:, 1:] == 0)
    else:  # a random conv2 unit silenced whole changes the interior
        assert ab.control_profile[:, 1:].max() > 0
    assert ab.silenced == {"conv2": 1} and ab.controls == {"conv2": 1} and ab.classifier
    assert f"at {ab.distance[-1]} positions from it (the centre)" in ab.text()[0] and "exactly 0 at" in ab.text()[0]
    assert _hooks(model) == 0


def test_ablation_hooks_removed_after_an_error(planted):
    model, shape, _, found = planted

    def broken(*_):
        raise RuntimeError("boom")

    handle = model.fc1.register_forward_pre_hook(broken)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            ablate(model, found, shape, n=4, progress=False)
        assert _hooks(model) == 1  # only the test's own
        with pytest.raises(RuntimeError, match="boom"):
            units(model, shape, n=4, progress=False)
        assert _hooks(model) == 1
    finally:
        handle.remove()
    assert _hooks(model) == 0


def test_no_unit_no_change(circular):
    model, shape, _, none = circular
    ab = ablate(model, none, shape, n=4, progress=False)
    assert ab.text() == [f"No padding-aware unit to silence in {none.name}; nothing changes."]
    assert np.all(ab.pan_profile == 0) and ab.pan_agree.all()


def test_figures(planted, tmp_path):
    from edgewise.report.probe_units import plot_ablation, plot_unit_gallery, plot_units_per_layer

    model, shape, _, found = planted
    ab = ablate(model, found, shape, n=4, progress=False)
    from edgewise.testing.figure_lint import figure_problems

    for fig in (plot_units_per_layer(found), plot_unit_gallery(found), plot_ablation(ab)):
        assert fig.edgewise_panels
        fig.canvas.draw()
        assert figure_problems(fig) == []
    with pytest.raises(EdgewiseError, match="no padding-aware unit to show"):
        plot_unit_gallery(dataclasses.replace(found, shown=found.shown[:0]))


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("data", ["digits", "photos"])
def test_acceptance_holds_for_other_weights_and_data(seed, data):
    """Other random weights, and grey photos (positive everywhere, so zero padding is visible to random units
    too): the planted unit is still the strongest, and circular padding still leaves none."""
    model, shape, (layer, channel) = planted_detector("zeros", seed=seed)
    r = units(model, shape, data=data, n=16, seed=seed, progress=False)
    top = r.unit(int(r.found[0]))
    assert (top["layer"], top["channel"]) == (layer, channel)
    twin, _, _ = planted_detector("circular", seed=seed)
    assert len(units(twin, shape, data=data, n=16, seed=seed, progress=False).found) == 0


def test_one_dimensional_sides():
    net = edgewise.nets.from_spec("conv5/c4, conv3/s2, gap, fc2", (1, 30), bias=True)
    r = units(net, (1, 30), data="noise", n=6, progress=False)
    assert r.sides == ("start", "end") and r.effect.shape == (sum(r.channels), 2) and r.channels[0] == 4
    assert r.status == ["analysed", "analysed"]


class _Doubled(nn.Conv2d):
    """Not "pad, then convolve": the recomputation cannot reproduce it, so the probe must say so."""

    def forward(self, x):
        return 2 * super().forward(x)


def test_layers_the_probe_cannot_measure_are_named():
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), _Doubled(3, 3, 3, padding=1),
                        nn.ConvTranspose2d(3, 2, 3, padding=1))
    r = units(net, (1, 10, 10), data="noise", n=4, progress=False)
    assert r.status[0] == "analysed"
    assert r.status[1] == "its output is not the convolution of its padded input"
    assert r.status[2] == "not a 1-D or 2-D convolution (ConvTranspose2d)"
    assert set(r.unit_layer.tolist()) == {0}
    assert "2 of the 3 chosen layers cannot hold one" in r.text()[-1]


def test_ablation_sentences_follow_the_data(planted):
    model, shape, _, found = planted
    ab = ablate(model, found, shape, n=4, how="mean", progress=False)
    ratio = ab.summary["pan_border"] / ab.summary["control_border"]
    assert f"changes the map {ratio:.3g}× more than the control" in ab.text()[1]
    flipped = dataclasses.replace(ab, pan_profile=ab.control_profile, control_profile=ab.pan_profile)
    assert "less than the control" in flipped.text()[1] and "exactly 0" not in flipped.text()[0].split(";")[0]
    quiet = dataclasses.replace(ab, control_profile=np.zeros_like(ab.control_profile))
    assert "only the padding-aware units change the map" in quiet.text()[1]
    assert f"stays the same for {100 * ab.pan_agree.mean():.0f} %" in ab.text()[2]
    regression = dataclasses.replace(ab, classifier=False)
    assert len(regression.text()) == 2


def test_ablation_measured_before_the_units_changes_nothing(planted):
    model, shape, _, found = planted
    ab = ablate(model, found, shape, n=4, at="conv1", progress=False)
    assert ab.upstream == [] and np.all(ab.pan_profile == 0)
    assert "0 of them in layers that run before conv1" in ab.text()[0]
    assert ablate(model, found, shape, n=4, progress=False).upstream == ["conv2"]
