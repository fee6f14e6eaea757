"""The border-1d explanation (edgewise.probe.explain): real quick nets, every conclusion flipped by its evidence."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from edgewise.errors import EdgewiseError
from edgewise.probe import explain
from edgewise.probe.explain import MIRROR_RTOL, Border1dExplanation, explain_border1d

N = 8  # middle signals for the profile: cheap, and enough for the test's sums


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("explain-cache")


@pytest.fixture(scope="module")
def result(cache) -> Border1dExplanation:
    torch.set_num_threads(1)
    return explain_border1d(seeds=1, n=N, cache=cache, progress=False)


@pytest.fixture(scope="module")
def net():
    from edgewise.experiments import tasks, trained_model

    m = trained_model("border-1d", "same", 0)
    return m, tasks.get("border-1d").data(m.experiment["config"])[1]


def conclusion(r: Border1dExplanation) -> str:
    return r.text()[-1]


# ----------------------------------------------------------------------------------------- the real run

def test_acceptance_it_is_the_data(result):
    """The quick net: no uneven layer, the mirror test passes, the reversal moves the deficit, the class sits in
    the signal's first samples; the conclusion says so."""
    assert result.uneven_layers == [] and result.mirror_passes and result.splits_are_shifts
    assert result.deficit("default") == "start" and result.deficit("reversed") == "end"
    assert result.informative_end == "start"
    assert result.accuracy.shape == (2, 1, 3) and result.profile.shape == (2, N, 80)
    text = conclusion(result)
    assert text.startswith("Conclusion: the deficit at the start is the data's, not the padding's nor a bug")
    assert "the perturbation profile follows the information" in text
    assert len(result.text()) == 7 and all(s.endswith(".") for s in result.text())


def test_accuracy_and_profile_match_an_independent_computation(result, net):
    """The default net is trained_model's; its accuracy and one profile value recomputed by hand."""
    m, tests = net
    for i, (x, y) in enumerate(tests.values()):
        with torch.no_grad():
            assert result.accuracy[0, 0, i] == pytest.approx(float((m(x).argmax(1) == y).double().mean()), abs=1e-12)
    x, eps = tests["middle"][0][:N], result.eps[0]
    with torch.no_grad():
        y0 = m(x).double()
        for p in (0, 12, 40, 79):
            d = torch.zeros_like(x)
            d[..., p] = eps
            change = sum((m(x + s * d).double() - y0).norm(dim=1) / eps for s in (1, -1)) / 2
            assert result.profile[0, :, p] == pytest.approx(change.numpy(), rel=1e-4)


def test_mirror_test_matches_the_functional_form(result, net):
    """The mirror test rebuilt with conv1d on flipped kernels (no module copy)."""
    import torch.nn.functional as F

    m, tests = net
    x = tests["start"][0][:200]
    convs = [c for c in m.modules() if isinstance(c, torch.nn.Conv1d)]
    originals = [c.forward for c in convs]
    try:
        for c in convs:
            c.forward = (lambda c: lambda t: F.conv1d(t, c.weight.flip(-1), c.bias, c.stride, c.padding))(c)
        with torch.no_grad():
            flipped = m(x.flip(-1))
    finally:
        for c, f in zip(convs, originals):
            c.forward = f
    with torch.no_grad():
        assert result.mirror_diff == pytest.approx(float((m(x) - flipped).abs().max()), abs=1e-7)
        assert result.mirror_scale == pytest.approx(float(m(x).abs().max()))


def test_information_is_deterministic(result):
    cfg = {"n_train": 2000, "n_test": 500, "length": 40, "data_seed": 0}
    again, chance = explain._information(cfg)
    assert np.array_equal(again, result.information) and chance == result.chance == 0.1


def test_cache_round_trip(result, cache, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("recomputed instead of read from the cache")

    monkeypatch.setattr(explain, "_variant", boom)
    again = explain_border1d(seeds=1, n=N, cache=cache, progress=False)
    assert again.text() == result.text()
    for f in dataclasses.fields(result):
        a, b = getattr(result, f.name), getattr(again, f.name)
        assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b, f.name
    with pytest.raises(AssertionError, match="recomputed"):  # another key is computed, not read
        explain_border1d(seeds=1, n=N + 1, cache=cache, progress=False)


@pytest.mark.parametrize("kw, message", [({"size": "huge"}, "unknown size 'huge'; choose one of quick, full"),
                                         ({"seeds": 0}, "seeds=0 must be at least 1"),
                                         ({"n": 0}, "n=0 middle-split signals for the profile; choose 1 to 500"),
                                         ({"n": 501}, "choose 1 to 500")])
def test_bad_input(kw, message):
    with pytest.raises(EdgewiseError, match=message):
        explain_border1d(**{"progress": False, **kw})


def test_figure(result):
    from edgewise.report.probe_explain import plot_border1d

    fig = plot_border1d(result)
    titles = [ax.get_title() for ax in fig.get_axes()]
    assert any(t.startswith("Accuracy, trained at the middle (1 seed)") for t in titles)
    assert any("Perturbation profile of the seed-0 nets" in t for t in titles)
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.get_axes())


# ------------------------------------------------------------------------- every verdict flips with its data

def test_uneven_layer_withdraws_not_the_padding(result):
    r = dataclasses.replace(result, uneven_layers=["maxpool2"])
    assert "1 window layer (maxpool2) reads padding on one side only" in r.text()[0]
    c = conclusion(r)
    assert "not the padding" not in c and "maxpool2 is padded unevenly" in c
    assert c.startswith("Conclusion (deficit at the start): the padding may contribute")
    assert "the data explains it" in c  # the data's evidence still stands


def test_failed_mirror_test_withdraws_not_the_padding(result):
    r = dataclasses.replace(result, mirror_diff=result.mirror_scale * MIRROR_RTOL * 2)
    assert "beyond the tolerance" in r.text()[0] and "within" not in r.text()[0]
    c = conclusion(r)
    assert "not the padding" not in c and "the mirror test fails" in c
    at_tolerance = dataclasses.replace(result, mirror_diff=result.mirror_scale * MIRROR_RTOL)
    assert "not the padding" in conclusion(at_tolerance)


def test_splits_that_are_not_shifts_are_named(result):
    r = dataclasses.replace(result, splits_are_shifts=False)
    assert "not exactly the middle split shifted" in r.text()[1]
    c = conclusion(r)
    assert "nor a bug" not in c and "the data pipeline is suspect" in c


def _accuracy(result, reversed_start_end):
    acc = result.accuracy.copy()
    acc[1, :, 0], acc[1, :, 2] = reversed_start_end
    return dataclasses.replace(result, accuracy=acc)


def test_reversal_that_leaves_the_deficit_withdraws_the_data(result):
    r = _accuracy(result, (0.3, 0.9))
    c = conclusion(r)
    assert "data's" not in c and "reversing the signals leaves the deficit at the start" in c
    assert "reversed in time, start 0.30" in r.text()[2]
    c = conclusion(_accuracy(result, (0.8, 0.8)))
    assert "data's" not in c and "reversing the signals removes it" in c


def test_information_at_the_other_end_withdraws_the_data(result):
    r = dataclasses.replace(result, information=result.information[::-1].copy())
    c = conclusion(r)
    assert "data's" not in c and "the class information sits at the signal's end, not its start" in c
    assert f"k = 5: first {result.information[1, 0]:.2f}" in r.text()[5]
    mixed = result.information.copy()
    mixed[1, -1] = mixed[0, -1]  # equal for k = 20: not more for every k
    c = conclusion(dataclasses.replace(result, information=mixed))
    assert "data's" not in c and "do not carry more class information than its last k for every k" in c


def test_no_deficit_says_so(result):
    acc = result.accuracy.copy()
    acc[0, :, 2] = acc[0, :, 0]
    assert "there is no asymmetry to explain" in conclusion(dataclasses.replace(result, accuracy=acc))


def test_profile_that_does_not_follow_is_said(result):
    prof = result.profile.copy()
    prof[1] = prof[0]  # the reversed net read like the default one
    r = dataclasses.replace(result, profile=prof)
    assert "does not follow the information" in conclusion(r)
    assert "more in the signal's first quarter than in the signal's last quarter" in r.text()[4]
    flat = result.profile.copy()
    flat[0] = 1.0
    flat_result = dataclasses.replace(result, profile=flat)
    s = flat_result.text()[3]
    assert "the net trained on the default signals is moved equally by both quarters" in conclusion(flat_result)
    assert "equally in the signal's first quarter and in the signal's last quarter" in s
    assert "most at sample 0" in s


def test_several_seeds_are_listed(result):
    acc = np.concatenate([result.accuracy, result.accuracy - 0.01], axis=1)
    r = dataclasses.replace(result, accuracy=acc, seeds=[0, 1])
    a = result.accuracy[0, 0]
    assert f"Accuracy (2 seeds): trained at the middle, start {a[0] - 0.005:.2f} ({a[0]:.2f}, {a[0] - 0.01:.2f})" \
        in r.text()[2]
