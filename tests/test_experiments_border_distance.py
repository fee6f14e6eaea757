"""The border-distance task: paired data, the exact threshold on random nets, config checks, notes, figure, a run."""

import matplotlib
import pytest
import torch

from edgewise import EdgewiseError, receptive_field, remedies
from edgewise.experiments import TASKS, data
from edgewise.experiments.results import Experiment
from edgewise.experiments.tasks import border_distance as bd
from edgewise.experiments.train import build_model
from edgewise.report.experiments import experiment_figures

matplotlib.use("Agg")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

TASK = bd.TASK
#: seconds, not minutes: a few digits, a narrow net
TINY = dict(n_train=40, n_test=8, epochs=1, width=8, model="3*conv3/c8, gmp, fc2")


def test_task_entry():
    assert TASKS["border-distance"] is TASK
    assert list(TASK.splits) == [f"b={b}" for b in range(bd.MAX_DISTANCE + 1)]
    assert TASK.contrast == ("b=0", f"b={bd.MAX_DISTANCE}") and TASK.notes is bd.notes
    assert all(r in remedies.names() for r in TASK.remedies) and TASK.remedies[0] == "same"
    assert TASK.config("quick")["canvas"] == 8 + 2 * bd.MAX_DISTANCE + 1


# ---------------------------------------------------------------------------------------------------- data

def test_ink_is_the_bounding_box_of_the_non_zero_pixels():
    p = torch.zeros(1, 6, 5)
    p[0, 1, 2], p[0, 4, 1] = 1.0, 2.0
    got = bd.ink(p)
    assert got.shape == (1, 4, 2) and got[0, 0, 1] == 1 and got[0, 3, 0] == 2
    with pytest.raises(EdgewiseError, match="no non-zero pixel"):
        bd.ink(torch.zeros(1, 3, 3))


def _sides(img: torch.Tensor, canvas: int) -> tuple[int, int, int, int]:
    """Blank rows/columns above, left of, below and right of the ink of one (1, S, S) image."""
    rows = torch.nonzero(img[0].sum(1)).flatten()
    cols = torch.nonzero(img[0].sum(0)).flatten()
    return int(rows[0]), int(cols[0]), canvas - 1 - int(rows[-1]), canvas - 1 - int(cols[-1])


def test_paired_splits_put_each_digit_at_both_corners_at_exactly_b():
    config = TASK.config("quick", **TINY)
    train, tests, shape = bd.make_data(config)
    s = config["canvas"]
    assert shape == (1, s, s) and set(tests) == set(TASK.splits)
    for b in (0, 5, bd.MAX_DISTANCE):
        x, y = tests[f"b={b}"]
        n = len(x) // 2
        assert len(x) == 2 * config["n_test"] and y.tolist() == [0] * n + [1] * n  # paired: same digits, both corners
        for i in range(n):
            top, left, bottom, right = _sides(x[i], s)
            assert top == left == b and min(bottom, right) > b  # nearest sides: top and left, at exactly b
            top, left, bottom, right = _sides(x[n + i], s)
            assert bottom == right == b and min(top, left) > b
            assert torch.equal(bd.ink(x[i]), bd.ink(x[n + i]))  # the same digit, translated
    xt, yt = train
    n = len(xt) // 2
    assert len(xt) == 2 * config["n_train"] and yt.tolist() == [0] * n + [1] * n
    dists = [_sides(xt[i], s)[0] for i in range(n)]
    assert min(dists) >= 0 and max(dists) <= bd.MAX_DISTANCE and len(set(dists)) > 5  # every distance mixed
    assert all(torch.equal(bd.ink(xt[i]), bd.ink(xt[n + i])) for i in range(n))
    # training and test digits are disjoint
    train_inks = {bd.ink(xt[i]).numpy().tobytes() for i in range(n)}
    assert not any(bd.ink(tests["b=0"][0][i]).numpy().tobytes() in train_inks for i in range(config["n_test"]))


def test_data_are_deterministic_and_follow_the_data_seed():
    config = TASK.config("quick", **TINY)
    first = bd.make_data(config)[0][0].clone()
    bd._make.cache_clear()
    assert torch.equal(bd.make_data(config)[0][0], first)
    assert not torch.equal(bd.make_data({**config, "data_seed": 1})[0][0], first)


def test_config_errors_name_the_option_and_the_fix():
    with pytest.raises(EdgewiseError, match=r"canvas=20 is too small .* give e\.g\. --set canvas=29"):
        bd.make_data(TASK.config("quick", canvas=20))
    with pytest.raises(EdgewiseError, match="unknown source 'emnist'; valid: mnist, sklearn"):
        bd.make_data(TASK.config("quick", source="emnist"))
    with pytest.raises(EdgewiseError, match="n_train \\+ n_test = 2000 but the sklearn source has only 1797"):
        bd.make_data(TASK.config("quick", n_train=1800, n_test=200))
    with pytest.raises(EdgewiseError, match="option epochs=0 must be at least 1"):
        TASK.config("quick", epochs=0)
    with pytest.raises(EdgewiseError, match="option bias='no' must be true or false"):
        TASK.config("quick", bias="no")


@pytest.mark.parametrize("model, message", [
    ("conv3/c8, maxpool2, conv3/c8, gmp, fc2", "layer maxpool1 has stride 2×2 .* needs a stride-1 net"),
    ("conv3/c8, conv3/s2/c8, gmp, fc2", "layer conv2 has stride 2×2"),
    ("3*conv3/c8, fc2", "must end its convolutions with a global pool .* but fc1 follows relu3"),
])
def test_models_the_threshold_cannot_hold_for_are_refused_before_training(model, message):
    with pytest.raises(EdgewiseError, match=message):
        bd.run_one(TASK.config("quick", **{**TINY, "model": model}), "same", 0,
                   progress=lambda *_: pytest.fail("trained a model it should have refused"))


# ------------------------------------------------------------------------------------- the exact threshold

#: (model, L, b* for same, b* for valid) worked out by hand: L = 1 + Σ (k − 1)·d
NETS = [("4*conv3/c8, gmp, fc2", 9, 4, 8), ("4*conv3/c8, gap, fc2", 9, 4, 8),
        ("conv5/c8, conv3/c8, conv3/d2/c8, gap, fc2", 11, 5, 10)]


def _gaps(model, s: int, patterns) -> list[float]:
    """Relative output gap of the paired placements at every distance, for a float64 ``model``."""
    return [bd.output_gap(model, bd.paired(patterns, b, s)[0].double()) for b in range(bd.MAX_DISTANCE + 1)]


@pytest.mark.parametrize("spec, field, same, valid", NETS)
@pytest.mark.parametrize("remedy", ["same", "valid", "full", "circular"])
def test_the_exact_threshold_on_random_nets(spec, field, same, valid, remedy):
    s = 33
    expected = {"same": same, "valid": valid, "full": 0, "circular": 0}[remedy]
    model = build_model({"model": spec, "width": 8, "bias": False}, remedy, (1, s, s), seed=3).double().eval()
    rf, grid = bd.geometry(model, (1, s, s))
    assert [int(a.size) for a in grid.axes] == [field, field]
    assert bd.predicted_threshold(rf, grid, remedy, bias=False) == expected
    patterns = [bd.ink(p) for p in data.digit_images("sklearn")[0][:6].double()]
    gaps = _gaps(model, s, patterns)
    assert max(gaps[expected:]) < 1e-12  # identical outputs (float64 rounding) from b* on
    if "gap" in spec:  # an average pool sees any cut-off part of the response: not one pixel closer
        assert bd.exact_from(gaps, 1e-12) == expected and (expected == 0 or gaps[expected - 1] > 1e-6)
    else:  # a max pool only when the cut-off part held a channel's maximum: b* bounds where equality begins
        assert bd.exact_from(gaps, 1e-12) <= expected


def test_no_exact_threshold_with_a_bias_or_other_remedies():
    s, spec = 33, {"model": "4*conv3/c8, gmp, fc2", "width": 8}
    for remedy, bias in (("same", True), ("valid", True), ("full", True), ("reflect", False), ("coordconv", False)):
        model = build_model({**spec, "bias": bias}, remedy, (1, s, s), seed=0)
        assert bd.predicted_threshold(*bd.geometry(model, (1, s, s)), remedy, bias=bias) is None, remedy
    # with a bias, full padding is not invariant (zero padding differs from the background), while b ≥ L − 1
    # still suffices for same and valid padding
    patterns = [bd.ink(p) for p in data.digit_images("sklearn")[0][:4].double()]
    for remedy in ("full", "same", "valid"):
        model = build_model({**spec, "bias": True}, remedy, (1, s, s), seed=0).double().eval()
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d) and m.bias is not None:
                torch.nn.init.uniform_(m.bias, -0.3, 0.3, generator=torch.Generator().manual_seed(0))
        gaps = _gaps(model, s, patterns)
        assert gaps[0] > 1e-6 and max(gaps[8:]) < 1e-12, remedy
    # circular stays exact with a bias: a torus has no border
    circ = build_model({**spec, "bias": True}, "circular", (1, s, s), seed=0)
    assert bd.predicted_threshold(*bd.geometry(circ, (1, s, s)), "circular", bias=True) == 0


def test_the_threshold_comes_from_the_built_nets_receptive_field():
    s = 33
    model = build_model({"model": "6*conv3/c4, gmp, fc2", "width": 4, "bias": False}, "valid", (1, s, s), seed=0)
    rf, grid = bd.geometry(model, (1, s, s))
    assert grid.size == (13, 13) and receptive_field(model, (1, s, s)).grid_layer.name == grid.name
    assert bd.predicted_threshold(rf, grid, "valid", bias=False) == 12


def test_exact_from():
    assert bd.exact_from([1.0, 0.5, 0.0, 1e-7]) == 2
    assert bd.exact_from([0.0, 1.0]) is None
    assert bd.exact_from([0.0, 0.0]) == 0
    assert bd.exact_from([0.0, 2e-5, 0.0], tolerance=1e-4) == 0


# ---------------------------------------------------------------------------------------------------- notes

def _run(remedy: str, seed: int, accs: list[float], threshold, exact=None) -> dict:
    acc = {f"b={b}": a for b, a in enumerate(accs)}
    return {"remedy": remedy, "seed": seed, "metrics": {
        "accuracy": acc, "chance": 0.5, "field": [9, 9], "field_layer": "relu4", "threshold": threshold,
        "exact_from": exact, "by_distance": {"distance": list(range(len(accs))), "accuracy": accs,
                                             "n": [10] * len(accs), "unit": "px"}}}


N = bd.MAX_DISTANCE + 1


def _same_runs(high: float = 1.0):
    return [_run("same", s, [high] * 3 + [0.5] * (N - 3), 3, 3) for s in range(3)]


def test_notes_are_computed_from_the_runs():
    lines = bd.notes(_same_runs())
    assert lines[0].startswith("receptive field of the last convolution (relu4): L = 9×9 px; "
                               f"distances 0–{N - 1} px")
    assert lines[1] == (f"same: predicted threshold b* = 3 px; accuracy 100.0 % at b < 3 (above chance at 3/3 "
                        f"distances), 50.0 % at b ≥ 3 (chance inside the 95 % interval at {N - 3}/{N - 3} "
                        "distances); identical paired outputs from b = 3, 3, 3 (seeds in order)")
    # a distance beyond the threshold off chance in every seed, a seed never identical, a weak cue below it
    runs = _same_runs(high=0.6)
    for r in runs:
        r["metrics"]["accuracy"]["b=7"] = 0.8
    runs[1]["metrics"]["exact_from"] = None
    runs[2]["metrics"]["accuracy"]["b=0"] = 0.4
    line = bd.notes(runs)[1]
    assert f"(chance inside the 95 % interval at {N - 4}/{N - 3} distances)" in line and "above chance at 2/3" in line
    assert "from b = 3, –, 3" in line
    assert "57.8 % at b < 3" in line
    # no prediction (coordconv) and a threshold of 0 (nothing below it)
    lines = bd.notes([_run("coordconv", 0, [1.0] * (N - 1) + [0.9], None), _run("full", 0, [0.5] * N, 0, 0)])
    assert lines[1] == ("coordconv: no exact threshold predicted; accuracy 90.0–100.0 % over the distances; "
                        "identical paired outputs in no seed")
    assert lines[2] == (f"full: predicted threshold b* = 0 px; accuracy 50.0 % at b ≥ 0 (exactly chance (one seed) "
                        f"at {N}/{N} distances); identical paired outputs from b = 0 (seed in order)")
    one = [_run("same", 0, [0.9, 0.5, 0.7] + [0.5] * (N - 4) + [0.51], 3, None)]
    assert ("above chance at 2/3 distances), 50.1 % at b ≥ 3 (exactly chance (one seed) at "
            f"{N - 4}/{N - 3} distances); identical paired outputs in no seed") in bd.notes(one)[1]
    assert bd.notes([{"remedy": "same", "seed": 0, "error": "does not fit"}]) == []


def test_the_border_figure_marks_each_predicted_threshold():
    runs = _same_runs() + [_run("full", s, [0.5] * N, 0, 0) for s in range(3)] + \
        [_run("circular", s, [0.5] * N, 0, 0) for s in range(3)]
    exp = Experiment("border-distance", "quick", {}, ["same", "full", "circular"], [0, 1, 2], list(TASK.splits), runs)
    ax = experiment_figures(exp)["border"].axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "predicted b* = 3 (same)" in labels and "predicted b* = 0 (full, circular)" in labels
    marks = {line.get_label(): line.get_xdata()[0] for line in ax.get_lines() if "b*" in line.get_label()}
    assert marks == {"predicted b* = 0 (full, circular)": 0, "predicted b* = 3 (same)": 3}
    # runs without a threshold (the other border tasks) get no lines
    for r in runs:
        r["metrics"].pop("threshold")
    ax = experiment_figures(exp)["border"].axes[0]
    assert not any("b*" in line.get_label() for line in ax.get_lines())


# ------------------------------------------------------------------------------------------------- training

def test_zero_padding_reads_the_corner_below_the_threshold_and_nothing_from_it():
    """The acceptance check, small: exactly chance from b* on, above chance at b = 0; same seed, same numbers."""
    config = TASK.config("quick", n_train=300, n_test=40, epochs=3)
    m = bd.run_one(config, "same", 0)
    assert m["threshold"] == 3 and m["field"] == [7, 7] and m["chance"] == 0.5
    assert all(m["accuracy"][f"b={b}"] == 0.5 for b in range(3, bd.MAX_DISTANCE + 1))
    assert m["exact_from"] is not None and m["exact_from"] <= 3
    assert m["accuracy"]["b=0"] > 0.75
    assert m["by_distance"]["accuracy"] == [m["accuracy"][s] for s in TASK.splits]
    assert m["by_distance"]["n"] == [80] * (bd.MAX_DISTANCE + 1)
    assert bd.run_one(config, "same", 0) == m  # same seed, same numbers
