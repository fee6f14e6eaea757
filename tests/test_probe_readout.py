"""The position readout probe (edgewise.probe.readout): exact zero information where features are uniform, the
ridge against least squares, Spearman against scipy, and what a readout can and cannot find."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from edgewise import nets
from edgewise.errors import EdgewiseError
from edgewise.experiments.results import interval
from edgewise.probe.readout import (ALPHAS, Readout, _ranks, readout, ridge_fit, spearman, target_maps)

SPEC = "conv3/c8, 3*conv3, gap, fc10"
SHAPE = (1, 20, 20)


def spec_net(padding: str, shape=SHAPE, spec=SPEC):
    return nets.from_spec(spec, shape, padding=padding, width=8, seed=0)


def conv_outputs(net, x):
    """Every convolution's output on ``x``, by hooks (independent of the probe's own plumbing)."""
    got, hooks = {}, []
    for name, m in net.named_modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(lambda mod, inp, out, name=name: got.__setitem__(name, out)))
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    return got


# ------------------------------------------------------------------------------------------ the acceptance

def test_circular_constant_is_exactly_uniform_and_carries_nothing():
    net = spec_net("circular")
    for name, f in conv_outputs(net, torch.ones(2, *SHAPE)).items():
        flat = f.flatten(2)
        assert torch.equal(flat.amax(2), flat.amin(2)), name  # uniform, exactly
    r = readout(net, data="constant", n=8, progress=False)
    assert r.uniform.all()
    assert np.all(r.spearman == 0)
    np.testing.assert_array_equal(r.mae, r.mae_constant)  # the prediction is the fitted mean everywhere
    assert np.ptp(r.example_prediction.reshape(len(r.targets), -1), axis=1).max() == 0


def test_zero_padding_constant_carries_position_and_valid_none():
    zero = readout(spec_net("same"), data="constant", n=8, progress=False)
    valid = readout(spec_net("valid"), data="constant", n=8, progress=False)
    assert not zero.uniform[0, -1]
    assert (zero.spearman[0, -1] > 0.5).all()
    assert valid.uniform.all() and np.all(valid.spearman == 0)  # no border in a constant input without padding
    assert valid.maps[-1] == [12, 12] and zero.maps[-1] == [20, 20]  # targets at each map's own positions


class Shuffle(nn.Module):
    """A zero-padded conv whose output positions are shuffled independently in each input (seeded)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 3, padding=1)
        self.gen = torch.Generator().manual_seed(0)

    def forward(self, x):
        f = self.conv(x).flatten(2)
        perm = torch.stack([torch.randperm(f.shape[2], generator=self.gen) for _ in range(len(f))])
        return torch.gather(f, 2, perm[:, None].expand_as(f)).view(len(x), 6, *x.shape[2:])


class Wrap(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.feat = inner

    def forward(self, x):
        return self.feat(x)


@pytest.mark.parametrize("make,data", [
    (lambda: Wrap(Shuffle()), "constant"),  # border information, positions shuffled per input
    (lambda: Wrap(nn.Conv2d(1, 6, 3, padding=1, padding_mode="circular")), "noise"),  # shift-equivariant, stationary
])
def test_the_readout_cannot_create_position_information(make, data):
    torch.manual_seed(0)  # only the layers' initial weights; the probe itself uses its own generators
    r = readout(make(), (1, 16, 16), data=data, n=64, layers=["feat"], progress=False)
    assert np.abs(r.spearman[0, 0]).max() < 0.1
    assert (r.mae[0, 0] >= r.mae_constant[0, 0] - 0.01).all()  # no better than predicting the mean


def test_the_same_shuffle_everywhere_is_position_information():
    """A fixed permutation of positions keeps position readable (a control for the shuffle test)."""
    r = readout(Wrap(nn.Conv2d(1, 6, 3, padding=1)), (1, 16, 16), data="constant", n=8, layers=["feat"],
                progress=False)
    assert (r.spearman[0, 0] > 0.3).all()


# ------------------------------------------------------------------------------------- pieces, references

def test_ridge_equals_brute_force_least_squares():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)) * [1.0, 5.0, 0.2] + [3.0, -1.0, 0.5]
    y = x @ rng.normal(size=(3, 2)) + rng.normal(size=(40, 2)) * 0.3 + [1.0, -2.0]
    for alpha in (1e-6, 0.1, 3.0):
        w, b = ridge_fit(x, y, alpha)
        mu, sd = x.mean(0), x.std(0)
        z = (x - mu) / sd
        a = np.vstack([z, math.sqrt(alpha * len(x)) * np.eye(3)])
        rhs = np.vstack([y - y.mean(0), np.zeros((3, 2))])
        v = np.linalg.lstsq(a, rhs, rcond=None)[0]
        np.testing.assert_allclose(w, v / sd[:, None], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(b, y.mean(0) - mu @ (v / sd[:, None]), rtol=1e-9, atol=1e-12)
    plain = np.linalg.lstsq(np.hstack([x, np.ones((40, 1))]), y, rcond=None)[0]
    np.testing.assert_allclose(ridge_fit(x, y, 1e-12)[0], plain[:3], rtol=1e-6)


def test_a_constant_column_gets_no_weight():
    x = np.column_stack([np.arange(10.0), np.full(10, 7.0)])
    w, b = ridge_fit(x, x[:, :1] * 2 + 1, 1e-9)
    assert w[1, 0] == 0 and w[0, 0] == pytest.approx(2, rel=1e-6) and b[0] == pytest.approx(1, rel=1e-6)


def test_spearman_against_scipy_and_by_hand():
    np.testing.assert_array_equal(_ranks(np.array([3.0, 1.0, 3.0, 2.0])), [2.5, 0, 2.5, 1])  # ties averaged
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(1 - 6 * 2 / (4 * 15))  # 1 − 6Σd²/(n(n²−1))
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 5, 30).astype(float), rng.normal(size=30)  # ties in a
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
    assert spearman(b, -b) == pytest.approx(-1.0)


def test_spearman_of_constant_maps():
    assert spearman(np.ones(5), np.arange(5)) == 0.0  # a constant prediction ranks nothing
    assert math.isnan(spearman(np.arange(5), np.ones(5)))  # a constant target has no ranking to match


def test_target_maps():
    h, v, g = target_maps((3, 5), ["horizontal", "vertical", "gaussian"])
    np.testing.assert_array_equal(h[0], [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_array_equal(v[:, 0], [0, 0.5, 1])
    assert g[1, 2] == 1 and g[0, 0] == pytest.approx(math.exp(-0.5 / (2 * 0.25 ** 2)))
    assert np.ptp(target_maps((2, 2), ["gaussian"])) == 0  # a 2×2 map's four positions are equally central
    (line,) = target_maps((4,), ["horizontal"])
    np.testing.assert_allclose(line, [0, 1 / 3, 2 / 3, 1])


def test_one_dimensional_model():
    net = nets.from_spec("conv3/c16, 5*conv3, gap, fc4", (1, 24), padding="same", width=16, seed=0)
    r = readout(net, data="constant", n=8, progress=False)
    assert r.targets == ["horizontal", "gaussian"] and r.example_prediction.shape == (2, 24)
    assert (r.spearman[0, -1] > 0.8).all()
    circular = readout(nets.from_spec("conv3/c4, 5*conv3, gap, fc4", (1, 24), padding="circular", width=4),
                       data="constant", n=8, progress=False)
    assert circular.uniform.all() and np.all(circular.spearman == 0)
    with pytest.raises(EdgewiseError, match="no 'vertical' target"):
        readout(net, data="constant", n=8, targets=["vertical"], progress=False)


# ------------------------------------------------------------------------ determinism, cache, bad input

def test_same_call_same_numbers_and_seeds_give_intervals():
    net = spec_net("same")
    a = readout(net, data="digits", n=16, seeds=2, progress=False)
    b = readout(net, data="digits", n=16, seeds=2, progress=False)
    for k in ("spearman", "mae", "mae_constant", "ridge", "uniform", "example_prediction"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    assert a.seeds == [0, 1] and a.spearman.shape == (2, 4, 3)
    assert set(np.unique(a.ridge)) <= set(ALPHAS)
    mean, half = a.interval("spearman")
    assert (mean[2, 1], half[2, 1]) == pytest.approx(interval(a.spearman[:, 2, 1]))


def test_cache_round_trip(tmp_path):
    net = spec_net("same")
    a = readout(net, data="constant", n=8, cache=tmp_path, progress=False)
    folders = list(tmp_path.iterdir())
    assert len(folders) == 1 and (folders[0] / "readout.json").exists()
    b = readout(net, data="constant", n=8, cache=tmp_path, progress=False)
    assert b.layers == a.layers and b.maps == a.maps and b.split == a.split
    for k in ("spearman", "mae", "uniform", "example_target"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    assert b.text() == a.text()
    readout(net, data="constant", n=12, cache=tmp_path, progress=False)  # another option, another entry
    assert len(list(tmp_path.iterdir())) == 2


def test_stack_over_trained_seeds():
    rs = [readout(spec_net("same"), data="constant", n=8, seed=s, progress=False) for s in (0, 1)]
    st = Readout.stack(rs, seeds=[5, 6])
    assert st.seeds == [5, 6] and st.over == "model seeds" and st.spearman.shape[0] == 2
    other = readout(spec_net("valid"), data="constant", n=8, progress=False)
    with pytest.raises(EdgewiseError, match="other layers, targets or map sizes"):
        Readout.stack([rs[0], other])


@pytest.mark.parametrize("kwargs,message", [
    ({"n": 3}, "cannot be split into fitting, validation and test"),
    ({"targets": ["diagonal"]}, "unknown target 'diagonal'"),
    ({"targets": ["horizontal", "horizontal"]}, "must be distinct"),
    ({"seeds": 0}, "seeds must be at least 1"),
    ({"data": "photoes"}, "did you mean photos"),
    ({"layers": ["conv9"]}, "conv9"),
    ({"layers": ["fc1"]}, "not a feature map"),
])
def test_bad_input(kwargs, message):
    with pytest.raises(EdgewiseError, match=message):
        readout(spec_net("same"), **{"data": "constant", "n": 8, "progress": False, **kwargs})


# ------------------------------------------------------------------------------------------------- text

def fake(uniform=False, spearman_last=0.8, mae_last=0.1, base=0.25, maps_last=(4, 4)) -> Readout:
    t = ["horizontal", "gaussian"]
    rho = np.array([[[0.2, 0.3], [spearman_last, spearman_last]]])
    mae = np.array([[[0.2, 0.2], [mae_last, mae_last]]])
    return Readout(model="m", shape=[1, 8, 8], data="constant", n=8, seeds=[0], over="input seeds", targets=t,
                   layers=["a", "b"], maps=[[8, 8], list(maps_last)], channels=[4, 4],
                   split={"n_train": 4, "n_val": 2, "n_test": 2}, spearman=rho, mae=mae,
                   mae_constant=np.full((1, 2, 2), base), ridge=np.ones((1, 2, 2)),
                   uniform=np.array([[False, uniform]]), example_prediction=np.zeros((2, 4, 4)),
                   example_target=np.zeros((2, 4, 4)))


def test_sentences_follow_the_data():
    plain = fake().text()
    assert any("horizontal Spearman 0.80, MAE 0.100 (below the 0.250 of predicting the mean)" in s for s in plain)
    assert any("No layer's features are uniform" in s for s in plain)
    assert any("horizontal map is read best at b (4×4): Spearman 0.80" in s for s in plain)
    worse = fake(spearman_last=0.1, mae_last=0.3).text()
    assert any("MAE 0.300 (above the 0.250" in s for s in worse)
    assert any("MAE 0.250 (equal to the 0.250" in s for s in fake(mae_last=0.25).text())
    assert any("horizontal map is read best at a (8×8): Spearman 0.20" in s for s in worse)
    flat = fake(uniform=True, spearman_last=0.0).text()
    assert any(s.startswith("At 1 of 2 layers (b) every channel's maximum equals its minimum") for s in flat)
    assert not any("No layer's features are uniform" in s for s in flat)
    none = fake(uniform=True, spearman_last=0.0, mae_last=0.25)
    none.spearman[:] = 0
    assert "No layer ranks the horizontal, gaussian maps: the mean Spearman is 0 or below at every layer." in \
        none.text()
    assert any("horizontal Spearman 0 exactly, MAE 0.250 (equal to the 0.250" in s for s in none.text())
    assert not any("read best" in s for s in none.text()) and not any("No layer ranks" in s for s in plain)
    r = fake(maps_last=(2, 2))
    r.spearman[0, 1, 1] = np.nan
    assert any("gaussian: no score" in s for s in r.text())
    assert any(s.startswith("Left out: gaussian at b") for s in r.text())
    assert not any(s.startswith("Left out") for s in plain)


def test_summary_is_json_and_from_data():
    import json

    s = fake().summary
    json.dumps(s)
    assert s["deepest"]["horizontal"]["spearman"] == 0.8 and s["uniform_layers"] == []
    assert fake(uniform=True).summary["uniform_layers"] == ["b"]


# ---------------------------------------------------------------------------------------------- figures

def test_figures():
    from edgewise.report.probe_readout import plot_readout_curves, plot_readout_example

    zero = readout(spec_net("same"), data="constant", n=8, progress=False)
    circ = readout(spec_net("circular"), data="constant", n=8, progress=False)
    fig = plot_readout_curves({"zero": zero, "circular": circ})
    axes = [a for a in fig.axes if a.get_title()]
    assert [a.get_title() for a in axes] == ["horizontal target", "vertical target", "gaussian target"]
    assert axes[0].get_ylabel().startswith("Spearman")
    np.testing.assert_array_equal(axes[0].lines[1].get_ydata(), 0)  # circular: exactly no information
    ex = plot_readout_example(zero)
    titles = [a.get_title() for a in ex.axes if a.get_title()]
    assert titles[:3] == ["horizontal: target", "vertical: target", "gaussian: target"]
    assert titles[3].startswith("horizontal: prediction · Spearman 0.") and len(titles) == 6
    with pytest.raises(EdgewiseError, match="deepest layer"):
        plot_readout_example(zero, layer=0)


def test_trained_border_digits_nets_zero_padding_beats_valid_and_circular_constant_is_zero():
    """The acceptance, cheaply: the border-digits net trained briefly (one epoch on 64 digits), one seed."""
    from edgewise.experiments import trained_model

    got = {p: readout(trained_model("border-digits", p, 0, epochs=1, n_train=64, n_test=50), data="constant", n=8,
                      progress=False)
           for p in ("same", "valid", "circular")}
    assert (got["same"].spearman[0, -1] > 0.5).all() and not got["same"].uniform.any()
    for p in ("valid", "circular"):
        assert got[p].uniform.all() and np.all(got[p].spearman == 0), p
