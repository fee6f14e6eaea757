"""The perturbation probe: the map against a slow loop, the zero-input answer, regions, baseline, cache, errors,
sentences, and border-1d's ``reverse`` option."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from edgewise.errors import EdgewiseError
from edgewise.nets import from_spec
from edgewise.probe.perturb import REGIONS, PerturbResult, grid, perturb, region_means, regions

SPEC = "conv3/c4, maxpool2, conv3/c4, gmp, fc5"


def net(bias: bool = True, shape=(1, 10, 10), seed: int = 0, spec: str = SPEC):
    torch.manual_seed(seed)
    m = from_spec(spec, shape, padding="same", bias=bias)
    m.input_shape = shape
    return m.eval()


def slow(model, x, k, eps, target="output"):
    """Every grid position by hand: move a k×k patch (kept inside) by ±eps and run the model."""
    _, _, h, w = x.shape
    out = np.zeros((len(x), h, w))
    with torch.no_grad():
        for i in range(len(x)):
            y0 = model(x[i:i + 1])[0].double()
            for r in range(h):
                for c in range(w):
                    r0, c0 = min(max(r - k // 2, 0), h - k), min(max(c - k // 2, 0), w - k)
                    vals = []
                    for s in (1, -1):
                        xm = x[i:i + 1].clone()
                        xm[..., r0:r0 + k, c0:c0 + k] += s * eps
                        dy = (model(xm)[0].double() - y0) / eps
                        vals.append(float(dy.norm()) if target == "output" else abs(float(dy[y0.argmax()])))
                    out[i, r, c] = np.mean(vals)
    return out


@pytest.mark.parametrize("k,target", [(1, "output"), (3, "logit")])
def test_map_equals_slow_loop(k, target):
    m = net()
    x = torch.rand((3, 1, 10, 10), generator=torch.Generator().manual_seed(1))
    r = perturb(m, data=x, n=3, patch=k, eps=0.05, stride=1, baseline=None, target=target, progress=False)
    np.testing.assert_allclose(r.trained[0], slow(m, x, k, 0.05, target), rtol=1e-4, atol=1e-6)
    assert r.map().shape == (10, 10) and r.input_shape == [1, 10, 10]


def test_bias_free_relu_on_zero_input_is_homogeneous():
    """Documented: f(±εP) = ε f(±P), so the map is (‖f(P)‖ + ‖f(−P)‖)/2 for every ε; the gradient is 0."""
    m = net(bias=False)
    for mod in m.modules():
        if isinstance(mod, torch.nn.Linear) and mod.bias is not None:
            torch.nn.init.zeros_(mod.bias)
    x = torch.zeros((1, 1, 10, 10))
    maps = [perturb(m, data=x, n=1, eps=e, stride=3, baseline=None, progress=False).map() for e in (1e-3, 0.5)]
    np.testing.assert_allclose(maps[0], maps[1], rtol=1e-5)
    axes = grid(10, 3)
    p = torch.zeros((1, 1, 10, 10))
    p[..., axes[1], axes[2]] = 1.0
    with torch.no_grad():
        want = (m(p).norm() + m(-p).norm()).item() / 2
    assert maps[0][1, 2] == pytest.approx(want, rel=1e-5)
    assert (maps[0] > 0).any()
    xg = x.clone().requires_grad_()
    m(xg).sum().backward()
    assert (xg.grad == 0).all()  # the gradient sees nothing there


def test_grid_and_regions_by_hand():
    assert grid(10, 4).tolist() == [0, 4, 8, 9]
    assert grid(28, 10).tolist() == [0, 10, 13, 20, 27]
    reg = regions([np.arange(16), np.arange(16)], (16, 16))
    assert reg[0, 0] == reg[15, 15] == reg[1, 1] == REGIONS["corner"]
    assert reg[0, 7] == reg[7, 15] == REGIONS["edge"]
    assert reg[7, 7] == reg[6, 9] == REGIONS["center"]
    assert reg[4, 4] == 0
    one = regions([np.arange(16)], (16,))
    assert one[0] == one[15] == REGIONS["edge"] and one[8] == REGIONS["center"] and one[4] == 0
    m = np.where(reg == REGIONS["center"], 6.0, np.where(reg == REGIONS["edge"], 3.0, 1.0))
    got = region_means(m, reg)
    assert got == {"center": 6.0, "edge": 3.0, "corner": 1.0}


def _hand(trained: np.ndarray, init: np.ndarray | None = None) -> PerturbResult:
    axes = [np.arange(s) for s in trained.shape[-2:]]
    init = np.zeros((1, 0, 1, *trained.shape)) if init is None else init[None, None, None]
    return PerturbResult(model="hand", input_shape=[1, *trained.shape[-2:]], data="x", patches=[1], eps=0.1,
                         stride=1, target="output", n_inits=init.shape[1], seed=0, axes=[a.tolist() for a in axes],
                         region=regions(axes, trained.shape[-2:]), trained=trained[None, None], init=init,
                         dead=[float((trained == 0).mean())])


def test_region_summary_and_sentences_follow_the_data():
    reg = regions([np.arange(16), np.arange(16)], (16, 16))
    centre_heavy = np.where(reg == REGIONS["center"], 8.0, np.where(reg == REGIONS["corner"], 2.0, 4.0))
    flat = np.ones((16, 16))
    r = _hand(centre_heavy, flat)
    assert r.ratios()["center/corner"] == 4.0 and r.ratios()["center/edge"] == 2.0
    text = " ".join(r.text())
    assert "4× more at the centre than at the corners" in text
    assert "equally at the centre and at the corners" in text and "sharpened" in text
    assert "moves at every position" in text
    corner_heavy = _hand(np.where(reg == REGIONS["corner"], 8.0, 2.0), centre_heavy)
    text = " ".join(corner_heavy.text())
    assert "4× more at the corners than at the centre" in text and "training reversed the contrast" in text
    dead = _hand(np.where(reg == REGIONS["corner"], 0.0, 1.0))
    assert dead.ratios()["center/corner"] == math.inf
    assert "does not move at all in" in " ".join(dead.text()) and "initialisation" not in " ".join(dead.text())


def test_trained_and_init_use_the_same_data_and_are_deterministic(tmp_path):
    m = net()
    a = perturb(m, data="digits", n=3, patch=(1, 3), stride=4, n_inits=2, progress=False)
    b = perturb(m, data="digits", n=3, patch=(1, 3), stride=4, n_inits=2, progress=False)
    np.testing.assert_array_equal(a.trained, b.trained)
    np.testing.assert_array_equal(a.init, b.init)
    assert a.init.shape == (2, 2, 3, *a.trained.shape[2:])
    # the baseline reads the very inputs the trained model reads: given them as a tensor, the numbers agree
    from edgewise.probe._common import inputs, subject
    from edgewise.sensitivity import _init_seeds, reinitialise

    x = inputs(subject(m), "digits", 3, 0)
    c = perturb(m, data=x, n=3, patch=(1, 3), stride=4, n_inits=2, eps=a.eps, progress=False)
    np.testing.assert_array_equal(a.init, c.init)
    fresh = reinitialise(m, _init_seeds(0, 2)[1], input_shape=(1, 10, 10)).eval()
    d = perturb(fresh, data=x, n=3, patch=(1, 3), stride=4, eps=a.eps, baseline=None, progress=False)
    np.testing.assert_allclose(d.trained, a.init[:, 1], rtol=1e-6)
    assert not np.allclose(a.trained, a.init[:, 0])


def test_cache_round_trip(tmp_path):
    m = net()
    a = perturb(m, data="noise", n=2, patch=(1, 2), stride=3, n_inits=1, cache=tmp_path, progress=False)
    b = perturb(m, data="noise", n=2, patch=(1, 2), stride=3, n_inits=1, cache=tmp_path, progress=False)
    assert len(list(tmp_path.iterdir())) == 1
    np.testing.assert_array_equal(a.trained, b.trained)
    np.testing.assert_array_equal(a.region, b.region)
    assert a.text() == b.text() and a.summary == b.summary
    perturb(m, data="noise", n=2, patch=(1, 2), stride=3, n_inits=1, eps=0.5, cache=tmp_path, progress=False)
    assert len(list(tmp_path.iterdir())) == 2  # eps is in the key


@pytest.mark.parametrize("kw,msg", [
    ({"patch": 11}, "larger than the input"), ({"patch": (1, 0)}, "at least 1"), ({"eps": 0}, "positive"),
    ({"eps": -1.0}, "positive"), ({"target": "loss"}, "choose 'output'"), ({"baseline": "x"}, "baseline"),
    ({"stride": 0}, "stride"), ({"n_inits": 0}, "n_inits")])
def test_bad_input(kw, msg):
    with pytest.raises(EdgewiseError, match=msg):
        perturb(net(), data="noise", n=1, progress=False, **kw)


def test_one_dimensional_ends():
    m = net(shape=(1, 24), spec="conv3/c4, maxpool2, conv3/c4, gmp, fc5")
    r = perturb(m, data="signals", n=2, stride=1, n_inits=1, progress=False)
    assert set(r.means()) == {"center", "edge"} and "center/corner" not in r.ratios()
    assert "ends" in r.text()[0]


def test_reverse_option_reverses_the_signals_exactly():
    from edgewise.experiments import tasks

    t = tasks.get("border-1d")
    small = {"n_train": 40, "n_test": 20}
    base, rev = t.config("quick", **small), t.config("quick", reverse=True, **small)
    assert t.config("quick")["reverse"] is False and t.config("full")["reverse"] is False
    (xb, yb), tb, _ = t.data(base)
    (xr, yr), tr, _ = t.data(rev)
    assert torch.equal(yb, yr)
    length, canvas = base["length"], base["canvas"]
    off = (canvas - length) // 2
    mid_b, mid_r = tb["middle"][0], tr["middle"][0]
    assert torch.equal(mid_r[..., off:off + length], mid_b[..., off:off + length].flip(-1))
    assert torch.equal(mid_r[..., :off], mid_b[..., :off]) and not torch.equal(mid_r, mid_b)
    assert torch.equal(tr["start"][0][..., :length], tb["start"][0][..., :length].flip(-1))
    # training spots are the same draws: each training row is the reversed signal at the same place
    torch.testing.assert_close(xb.abs().sum(-1), xr.abs().sum(-1))
    assert torch.equal((xb != 0).sum(-1), (xr != 0).sum(-1))


def _explanation(zero: float, mix: float, init_mix: float):
    from edgewise.probe.perturb import PROBES, WEIGHTS, RatioExplanation

    rows = [{"weights": w, "probe": p, "grad_anchor": 10.0, "grad_region": 5.0, "grad_zero": 0.5,
             "pert_anchor": 3.0, "pert_region": 2.0} for w in WEIGHTS for p in PROBES]
    for r in rows:
        if r["probe"] == "mix":
            r["grad_zero"] = zero
            r["grad_anchor"] = mix if r["weights"] == "center" else init_mix
    stats = {w: {"center_mean": 0.4, "center_var": 0.1, "corner_mean": 0.0, "corner_var": 0.0,
                 "center_nonzero": 0.8, "corner_nonzero": 0.0} for w in ("center", "everywhere")}
    stats["report_init"] = {"n_inits": 32, "ratio": 2.0}
    return RatioExplanation(rows=rows, stats=stats, size="quick", n=48, n_inits=3, stride=3, eps=0.01)


def test_explanation_sentences_follow_the_rows(tmp_path):
    a = " ".join(_explanation(0.9, 300.0, 30.0).text())
    assert "The report's 300×" in a and "against 2× at initialisation" in a and "gives 30×" in a
    assert "exactly 0 in 90% of the (digit, corner pixel) pairs" in a and "corner pixels are never non-zero" in a
    assert "of the 150× between the report's two numbers" in a and "account for 15× and training for 10×" in a
    b = " ".join(_explanation(0.0, 40.0, 40.0).text())
    assert "No corner pixel has an exactly zero gradient" in b and "training for 1×" in b
    e = _explanation(0.9, 300.0, 30.0)
    e.save(tmp_path)
    assert type(e).load(tmp_path).text() == e.text()


def test_a_baseline_within_float32_rounding_is_not_read():
    reg = regions([np.arange(16), np.arange(16)], (16, 16))
    trained = np.where(reg == REGIONS["center"], 8.0, 2.0)
    r = _hand(trained, np.where(reg == REGIONS["center"], 2e-6, 1e-6))
    r.output_norm = np.array([[1.0], [1.0]])  # the init map × ε is 1e-7 of the output: rounding
    assert not r.resolved("init") and r.resolved("trained")
    assert "within float32 rounding" in r.text()[0] and "training" not in r.text()[0]
    r.output_norm = np.array([[1.0], [1e-4]])  # the same map on a tiny output: a real change
    assert r.resolved("init") and "training sharpened" in r.text()[0]


def test_one_input_has_no_interval():
    r = perturb("conv3/c8, conv3/c8, gap, fc10", (1, 12, 12), data="digits", n=1, stride=3, baseline=None,
                progress=False)
    assert "(one input: no interval)" in r.text()[0] and "95 % interval" not in r.text()[0]
