"""Spatial bias maps and blind spots (edgewise.probe.bias): exact invariance under circular padding, the
artefact of uneven padding on its own side, the one-pass accumulation against a brute-force mean, the sliding
stimulus against a slow loop, a planted blind spot, errors, determinism, the cache and the sentences."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from edgewise import nets
from edgewise.errors import EdgewiseError
from edgewise.probe.bias import LINE_FACTOR, BlindSpots, SpatialBias, band, bias, blind_spots, grid, pct, place, share

SPEC = "conv3/c4, conv3/s2, conv3, gap, fc10"
SHAPE = (1, 16, 16)


def spec_net(padding: str, seed: int = 0) -> nn.Module:
    return nets.from_spec(SPEC, SHAPE, padding=padding, width=4, seed=seed)


def uneven(pad=(0, 1, 0, 1)) -> nn.Module:
    """TF-'same' for a stride-2 3×3 conv on an even input: one more row/column at the bottom/right."""
    net = nn.Sequential()
    net.add_module("pad", nn.ZeroPad2d(pad))
    net.add_module("conv", nn.Conv2d(1, 4, 3, stride=2))
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        net.conv.weight.copy_(torch.randn(net.conv.weight.shape, generator=gen))
        net.conv.bias.copy_(torch.randn(4, generator=gen))
    net.input_shape = SHAPE
    return net


class Mask(nn.Module):
    """Zeroes the first ``rows`` rows: the unit after it cannot see the top of the input."""

    def __init__(self, rows: int):
        super().__init__()
        self.rows = rows

    def forward(self, x):
        x = x.clone()
        x[..., :self.rows, :] = 0
        return x


def planted(rows: int = 8) -> nn.Module:
    net = nn.Sequential()
    net.add_module("conv", nn.Conv2d(1, 1, 1, bias=False))
    net.add_module("mask", Mask(rows))
    net.add_module("out", nn.Conv2d(1, 1, 1, bias=False))
    with torch.no_grad():
        net.conv.weight.fill_(1.0)
        net.out.weight.fill_(1.0)
    net.input_shape = (1, 24, 24)
    return net


# ------------------------------------------------------------------------------------------------- bias

def test_circular_padding_on_constant_input_is_exactly_uniform():
    r = bias(spec_net("circular"), data="constant", n=3, progress=False)
    assert r.layers == ["conv1", "conv2", "conv3"]
    for layer in r.layers:
        for kind in ("signed", "rms"):
            m = r.map(layer, kind)
            assert m.max() == m.min()
    assert r.deviation == [0.0, 0.0, 0.0] and all(r.uniform) and r.lines == []
    assert "translation invariant" in r.text()[0] and r.text()[1].startswith("No layer has an artefact line")
    assert r.input_uniform and r.text()[4].startswith("The inputs' mean is the same at every position")


def test_zero_padding_on_constant_input_is_not_uniform_at_the_border():
    r = bias(spec_net("same"), data="constant", n=3, progress=False)
    m = r.map("conv1", "rms")
    assert m.max() > m.min()
    inner = m[1:-1, 1:-1]
    assert inner.max() == inner.min()  # one 3×3 layer: only the outer ring differs
    assert all(np.all(edge != inner[0, 0]) for edge in (m[0], m[-1], m[:, 0], m[:, -1]))
    assert all(d > 0 for d in r.deviation) and not any(r.uniform)
    assert {x["side"] for x in r.lines if x["layer"] == "conv1"} == {"top", "bottom", "left", "right"}
    assert r.text()[0].startswith("Position explains") and "Artefact lines" in r.text()[1]


def test_uneven_padding_leaves_its_artefact_on_the_padded_side_only():
    r = bias(uneven(), data="constant", n=2, progress=False)
    assert {x["side"] for x in r.lines} == {"bottom", "right"}
    top, bottom, left, right = r.sides[0]
    assert top == 0.0 and left == 0.0 and bottom > 0 and right > 0
    assert np.all(r.asymmetry() == 1.0)
    assert r.text()[2].startswith("Bottom vs top: the outermost bottom row departs more from the interior than "
                                  "the top one in 1 of 1 layers, less in 0")
    mirrored = bias(uneven((1, 0, 1, 0)), data="constant", n=2, progress=False)
    assert {x["side"] for x in mirrored.lines} == {"top", "left"}
    assert "than the top one in 0 of 1 layers, less in 1" in mirrored.text()[2]


def test_accumulation_equals_a_brute_force_mean():
    from edgewise.probe._common import inputs, subject
    from edgewise.visualize.engine import activations

    net = spec_net("same", seed=3)
    r = bias(net, data="digits", n=10, batch=3, progress=False)
    x = inputs(subject(net), "digits", 10, 0)
    with torch.no_grad():  # the same batches as bias(): float32 convolutions round differently per batch size
        parts = [activations(net, x[i:i + 3], r.layers) for i in range(0, 10, 3)]
    acts = {l: torch.cat([p[l] for p in parts]) for l in r.layers}
    for i, layer in enumerate(r.layers):
        a = acts[layer].double().numpy()                         # (N, C, H, W)
        mean = a.mean(0)                                         # per channel and position
        total = a.var(axis=(0, 2, 3))                            # per channel, over inputs and positions
        pos = mean.var(axis=(1, 2))
        live = total > 0
        z = (mean - mean.mean(axis=(1, 2), keepdims=True))[live] / np.sqrt(total[live])[:, None, None]
        assert r.deviation[i] == pytest.approx(float((pos[live] / total[live]).mean()), rel=1e-9)
        np.testing.assert_allclose(r.map(layer), z.mean(0), rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(r.map(layer, "rms"), np.sqrt((z ** 2).mean(0)), rtol=1e-8, atol=1e-12)
        h = a.shape[2]
        b = band(h)
        assert b == {16: 4, 8: 2}[h]
        rows = np.sqrt(((z.mean(2) - z.mean(2)[:, b:h - b].mean(1, keepdims=True)) ** 2).mean(0))
        np.testing.assert_allclose(r.profile(layer, 0), rows, rtol=1e-8, atol=1e-12)
        # the mean of rms² over positions is the deviation
        assert float((r.map(layer, "rms") ** 2).mean()) == pytest.approx(r.deviation[i], rel=1e-9)
    xs = x.double().numpy()
    assert r.input_deviation == pytest.approx(float(xs.mean(0).var() / xs.var()), rel=1e-9)
    assert not r.input_uniform and r.text()[4].startswith(f"For reference, the inputs themselves: position "
                                                          f"explains {pct(r.input_deviation)}")


def test_percentages_never_round_to_0_or_100_unless_exact():
    assert pct(0.0) == "0%" and pct(1e-12) == "1e-10%" and pct(0.1538) == "15.38%"
    assert share(np.array([True] * 726 + [False] * 3)) == "99.6%"
    assert share(np.ones(5, bool)) == "100%" and share(np.zeros(5, bool)) == "0%"
    assert share(np.array([True, False, False])) == "33%"


def test_bias_on_a_1d_model():
    net = nets.from_spec("conv5/c4, maxpool2, conv5, gap, fc10", (1, 64), width=4, seed=0)
    r = bias(net, data="signals", n=8, progress=False)
    assert r.ndim == 1 and r.side_names == ["start", "end"] and r.map("conv2").shape == (32,)
    assert r.text()[2].startswith("End vs start")
    from edgewise.report.probe_bias import plot_bias_grid, plot_bias_profiles

    assert len(plot_bias_profiles(r).axes) == 2  # one panel per layer (start vs end)
    with pytest.raises(EdgewiseError, match="plot_bias_grid draws 2-D feature maps"):
        plot_bias_grid(r)


def test_bias_bad_input():
    with pytest.raises(EdgewiseError, match="has no layer 'nope'"):
        bias(spec_net("same"), data="constant", n=2, layers="nope", progress=False)
    with pytest.raises(EdgewiseError, match="no 1-D or 2-D spatial axes"):
        bias(spec_net("same"), data="constant", n=2, layers="fc1", progress=False)
    with pytest.raises(EdgewiseError, match="batch must be at least 1"):
        bias(spec_net("same"), data="constant", n=2, batch=0, progress=False)
    r = bias(spec_net("same"), data="constant", n=2, progress=False)
    with pytest.raises(EdgewiseError, match="no layer 'conv9'.*did you mean"):
        r.map("conv9")


def test_bias_is_deterministic_and_round_trips_the_cache(tmp_path):
    a = bias(spec_net("same"), data="digits", n=6, progress=False, cache=tmp_path)
    b = bias(spec_net("same"), data="digits", n=6, progress=False)
    (folder,) = tmp_path.iterdir()
    c = SpatialBias.load(folder)
    d = bias(spec_net("same"), data="digits", n=6, progress=False, cache=tmp_path)
    for other in (b, c, d):
        assert other.to_dict() == a.to_dict()
        for name, arr in a.arrays().items():
            np.testing.assert_array_equal(getattr(other, name), arr)
    assert c.text() == a.text()


# ------------------------------------------------------------------------------------------- blind spots

def test_grid_includes_both_borders_and_the_centre():
    assert grid(28, 12, 5).tolist() == [0, 5, 8, 10, 15, 16]
    assert grid(224, 64, None).tolist()[-1] == 160 and len(grid(224, 64, None)) <= 34


def test_blind_spot_map_equals_a_slow_loop():
    net = spec_net("same", seed=5)
    r = blind_spots(net, size=6, stride=3, progress=False, batch=7)
    stim = place(torch.zeros(SHAPE), torch.ones(1, 6, 6), [[0, 0]])  # shape check of place itself
    assert stim[0, 0, :6, :6].eq(1).all() and stim[0, 0, 6:].eq(0).all()
    from edgewise.experiments import data
    from edgewise.probe._common import generator

    digits, _ = data.digit_images("mnist", 6, crop=True)
    digit = digits[int(torch.randint(len(digits), (1,), generator=generator(0)))]
    cls = r.target["class"]
    for i, y in enumerate(r.grid0):
        for j, x in enumerate(r.grid1):
            img = torch.zeros(1, *SHAPE)
            img[0, :, y:y + 6, x:x + 6] = digit
            with torch.no_grad():
                out = net(img)
            assert r.response[i, j] == pytest.approx(float(out[0, cls]), rel=1e-6, abs=1e-7)
            assert bool(r.correct[i, j]) == (int(out.argmax()) == cls)
    c = (16 - 6) // 2
    assert (r.grid0[r.centre[0]], r.grid1[r.centre[1]]) == (c, c)
    assert f"at {int(r.correct.sum())} of {r.correct.size} positions" in r.text()[-1]


def test_a_planted_blind_spot_is_found():
    r = blind_spots(planted(), target=("out", 0), size=8, stride=4, progress=False)
    assert r.defined and r.target == {"kind": "unit", "layer": "out", "channel": 0, "reduce": "max"}
    assert r.background_response == 0.0
    assert r.suppressed[r.grid0 == 0].all()                   # the digit wholly inside the masked rows
    assert not r.suppressed[r.grid0 >= 8].any()               # wholly below them
    sides = r.side_means()
    assert sides["top"] == 0.0 and sides["bottom"] > 0.5
    text = r.text()
    assert text[1].startswith("Blind spots:") and text[3].startswith("Top vs bottom: at the top border")
    free = blind_spots(planted(rows=0), target=("out", 0), size=8, stride=4, progress=False)
    assert not free.suppressed.any() and "no blind spot" in free.text()[1]


def test_a_given_stimulus_slides_like_the_others():
    r = blind_spots(planted(), stimulus=torch.ones(1, 4, 4), target=("out", 0), stride=4, progress=False)
    assert r.stimulus == "given" and r.size == 4 and r.centre_response == 1.0
    assert r.suppressed[r.grid0 + 4 <= 8].all() and not r.suppressed[r.grid0 >= 8].any()
    assert "given stimulus of size 4" in r.text()[0]
    with pytest.raises(EdgewiseError, match=r"must have shape 1×s×s .* got \(1, 4, 5\)"):
        blind_spots(planted(), stimulus=torch.ones(1, 4, 5), target=("out", 0), progress=False)


def test_a_stimulus_that_does_not_raise_the_target_is_said_so():
    r = blind_spots(planted(rows=24), target=("out", 0), size=8, stride=8, progress=False)
    assert not r.defined and len(r.text()) == 1 and "does not raise" in r.text()[0]
    assert not r.suppressed.any()


def test_blind_spots_on_a_1d_model():
    net = nets.from_spec("conv5/c4, maxpool2, conv5, gap, fc10", (1, 64), width=4, seed=0)
    r = blind_spots(net, size=20, stride=4, progress=False)
    assert r.response.shape == (len(r.grid0),) and r.stimulus == "signal" and r.grid0[-1] == 44
    from edgewise.report.probe_bias import plot_blind_spots

    assert len(plot_blind_spots(r).axes) == 2  # the effect curve and top-1


def test_blind_spots_bad_input():
    net = spec_net("same")
    with pytest.raises(EdgewiseError, match=r"stimulus \(20\) is larger than the input \(16\)"):
        blind_spots(net, size=20, progress=False)
    with pytest.raises(EdgewiseError, match="stride must be a whole number ≥ 1, got 0"):
        blind_spots(net, size=4, stride=0, progress=False)
    with pytest.raises(EdgewiseError, match="has no layer 'nope'"):
        blind_spots(net, size=4, target=("nope", 0), progress=False)
    with pytest.raises(EdgewiseError, match="unknown stimulus 'cat'"):
        blind_spots(net, stimulus="cat", progress=False)
    with pytest.raises(EdgewiseError, match="signal' is 1-D"):
        blind_spots(net, stimulus="signal", progress=False)
    with pytest.raises(EdgewiseError, match="has 4 channels, not channel 9"):
        blind_spots(net, size=4, stride=6, target=("conv1", 9), progress=False)


def test_blind_spots_deterministic_and_cached(tmp_path):
    net = spec_net("same", seed=2)
    a = blind_spots(net, size=6, stride=5, progress=False, cache=tmp_path)
    b = blind_spots(net, size=6, stride=5, progress=False)
    (folder,) = tmp_path.iterdir()
    c = BlindSpots.load(folder)
    for other in (b, c):
        assert other.to_dict() == a.to_dict()
        for name, arr in a.arrays().items():
            np.testing.assert_array_equal(getattr(other, name), arr)
    assert c.text() == a.text() and c.summary == a.summary


# ------------------------------------------------------------------------------------------------ figures

def test_figures_draw(tmp_path):
    from edgewise.report.figures import save_figure
    from edgewise.report.probe_bias import plot_bias_grid, plot_bias_profiles, plot_blind_spots

    r = bias(spec_net("same"), data="digits", n=4, progress=False)
    s = blind_spots(planted(), target=("out", 0), size=8, stride=4, progress=False)
    c = blind_spots(spec_net("same", seed=5), size=6, stride=3, progress=False)
    for fig in (plot_bias_grid(r), plot_bias_grid(r, kind="signed"), plot_bias_profiles(r), plot_blind_spots(s),
                plot_blind_spots(c)):
        save_figure(fig, tmp_path / "f.png")
    assert len(plot_blind_spots(c).axes) == 3  # the map, its colour bar, top-1
    with pytest.raises(EdgewiseError, match="kind must be 'rms' or 'signed'"):
        plot_bias_grid(r, kind="abs")
    assert LINE_FACTOR == r.line_factor
