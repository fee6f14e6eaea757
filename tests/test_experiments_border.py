"""The border tasks (border-digits, border-1d), their shared placement helper and the border figure."""

import numpy as np
import pytest
import torch

from edgewise import EdgewiseError
from edgewise.experiments import data
from edgewise.experiments.tasks import digits, placement, signals
from edgewise.experiments.train import build_model
from edgewise.report.border import plot_border_curve

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

#: tiny overrides: seconds, not minutes
TINY_DIGITS = dict(source="sklearn", patch=8, canvas=16, n_train=120, n_test=30, epochs=2, batch_size=16,
                   model="conv3/c8, maxpool2, conv3/c8, maxpool2, conv3/c8, gmp, fc10")
TINY_SIGNALS = dict(canvas=64, n_train=160, n_test=30, epochs=2, batch_size=16,
                    model="conv5/c8, maxpool2, conv5/c8, maxpool2, conv5/c8, gmp, fc10")


# ----------------------------------------------------------------------------------------------- placement

def test_fixed_placements_on_a_non_square_canvas():
    patch, canvas, rng = (3, 4), (10, 17), np.random.default_rng(0)
    free = np.array([7, 13])
    assert (placement.corners("center", patch, canvas, 5, rng) == [3, 6]).all()
    edge = placement.corners("edge", patch, canvas, 400, rng)
    assert (placement.distance(edge, patch, canvas) == 0).all()
    # touching exactly one side and centred along it: one axis at 0 or its room, the other at its middle
    at_side = (edge == 0) | (edge == free)
    centred = edge == free // 2
    assert ((at_side[:, 0] & centred[:, 1]) | (at_side[:, 1] & centred[:, 0])).all()
    assert {tuple(c) for c in edge} == {(0, 6), (7, 6), (3, 0), (3, 13)}  # all four sides occur
    corner = placement.corners("corner", patch, canvas, 400, rng)
    assert {tuple(c) for c in corner} == {(0, 0), (0, 13), (7, 0), (7, 13)}
    anywhere = placement.corners("everywhere", patch, canvas, 2000, rng)
    assert (anywhere >= 0).all() and (anywhere <= free).all() and len({tuple(c) for c in anywhere}) > 80


def test_1d_placements_and_jitter():
    rng = np.random.default_rng(1)
    assert (placement.corners("start", (40,), (88,), 3, rng) == 0).all()
    assert (placement.corners("middle", (40,), (88,), 3, rng) == 24).all()
    assert (placement.corners("end", (40,), (88,), 3, rng) == 48).all()
    mid = placement.corners("middle", (40,), (88,), 500, rng, jitter=2)[:, 0]
    assert set(mid.tolist()) == {22, 23, 24, 25, 26}
    start = placement.corners("start", (40,), (88,), 500, rng, jitter=2)[:, 0]
    assert set(start.tolist()) == {0, 1, 2}  # clipped to the canvas: it stays at the side or moves inwards


def test_distance_to_the_nearest_border():
    patch, canvas = (3, 4), (10, 17)  # room (7, 13): the rows bind first
    got = placement.distance([(0, 5), (3, 6), (7, 13), (2, 2), (5, 12)], patch, canvas)
    assert got.tolist() == [0, 3, 0, 2, 1]
    assert placement.max_distance(patch, canvas) == 3
    assert placement.distance([(10,), (0,), (48,), (24,)], (40,), (88,)).tolist() == [10, 0, 0, 24]
    wanted = np.repeat(np.arange(4), 50)
    spots = placement.at_distance(wanted, patch, canvas, np.random.default_rng(2))
    assert (placement.distance(spots, patch, canvas) == wanted).all()
    with pytest.raises(EdgewiseError, match="distances run 0–3"):
        placement.at_distance([4], patch, canvas, np.random.default_rng(0))
    with pytest.raises(EdgewiseError, match="does not fit"):
        placement.room((12, 4), (10, 17))


def test_place_pastes_the_patch_and_touches_the_side():
    patch = torch.arange(1.0, 7.0).reshape(1, 1, 2, 3)
    x = placement.place(patch, [(0, 4)], (5, 7))[0, 0]
    assert (x[0:2, 4:7] == patch[0, 0]).all() and x.sum() == patch.sum()
    assert x[0].ne(0).any() and x[:, -1].ne(0).any()  # top-right corner: touches the top and right sides
    noisy = placement.place(patch, [(0, 4)], (5, 7), noise=0.1, rng=np.random.default_rng(0))
    assert noisy[0, 0, 4, 0] != 0


def test_bad_choices_list_the_valid_values():
    with pytest.raises(EdgewiseError, match="unknown placement 'top'; valid: center, edge, corner, everywhere"):
        placement.corners("top", (2, 2), (8, 8), 1, np.random.default_rng(0))
    with pytest.raises(EdgewiseError, match="unknown train_at 'top'; valid: center, edge, corner, everywhere"):
        digits.make_data(digits.TASK.config("quick", train_at="top"))
    with pytest.raises(EdgewiseError, match="unknown source 'emnist'; valid: mnist, sklearn"):
        digits.make_data(digits.TASK.config("quick", source="emnist"))
    with pytest.raises(EdgewiseError, match="unknown train_at 'center'; valid: start, middle, end, everywhere"):
        signals.make_data(signals.TASK.config("quick", train_at="center"))


# ------------------------------------------------------------------------------------------------ the data

def _find(pool, crops):
    """Index in ``pool`` of each crop (exact match), -1 where none matches."""
    index = {row.tobytes(): i for i, row in enumerate(np.asarray(pool).reshape(len(pool), -1))}
    return np.array([index.get(c.tobytes(), -1) for c in np.ascontiguousarray(crops).reshape(len(crops), -1)])


def test_digits_sit_where_the_split_says_with_their_labels():
    config = digits.TASK.config("quick", **{**TINY_DIGITS, "canvas": [16, 20]}, jitter=0)  # non-square, room (8, 12)
    pool, labels = data.digit_images("sklearn", 8, crop=True)
    (xtr, ytr), tests, _ = digits.make_data(config)
    assert xtr.shape == (120, 1, 16, 20) and 0 <= float(xtr.min()) and float(xtr.max()) <= 1
    spots = {"center": [(4, 6)], "edge": [(0, 6), (8, 6), (4, 0), (4, 12)],
             "corner": [(0, 0), (0, 12), (8, 0), (8, 12)]}
    found = {"train": _find(pool, xtr[:, :, 4:12, 6:14])}
    for split, (x, y) in tests.items():
        idx = np.full(len(x), -1)
        for r, c in spots[split]:
            hit = _find(pool, x[:, :, r:r + 8, c:c + 8])
            rest = x.clone()
            rest[:, :, r:r + 8, c:c + 8] = 0
            idx = np.where((idx < 0) & (hit >= 0) & (rest.flatten(1).abs().sum(1) == 0).numpy(), hit, idx)
        assert (idx >= 0).all(), split
        assert (labels[idx] == y).all()
        found[split] = idx
    assert (found["train"] >= 0).all() and (labels[found["train"]] == ytr).all()
    # the same test digits at every placement, none of them a training digit
    assert (found["center"] == found["edge"]).all() and (found["center"] == found["corner"]).all()
    assert not set(found["train"]) & set(found["center"])


def test_signals_sit_at_start_middle_and_end_with_their_labels():
    config = signals.TASK.config("quick", **TINY_SIGNALS)  # room 24: middle at 12
    pool, labels = data.mnist1d_signals(190, 0, 40)
    pool = torch.from_numpy(pool)
    _, tests, by_distance = signals.make_data(config)
    for split, at in {"start": 0, "middle": 12, "end": 24}.items():
        x, y = tests[split]
        idx = _find(pool, x[:, 0, at:at + 40])
        assert (idx >= 0).all() and (torch.from_numpy(labels[idx]) == y).all(), split
        assert x[:, 0, :at].abs().sum() == 0 and x[:, 0, at + 40:].abs().sum() == 0
    dist = [d for d, x, y in by_distance()]
    assert dist == list(range(13))


def test_data_is_deterministic_and_seeded_by_data_seed():
    config = digits.TASK.config("quick", **TINY_DIGITS, train_at="everywhere", noise=0.05)
    a = digits.make_data(config)
    digits._make.cache_clear()
    b = digits.make_data(config)
    assert a[0][0] is not b[0][0] and torch.equal(a[0][0], b[0][0]) and torch.equal(a[0][1], b[0][1])
    assert all(torch.equal(a[1][s][0], b[1][s][0]) for s in digits.SPLITS)
    assert all(torch.equal(xa, xb) for (_, xa, _), (_, xb, _) in zip(a[2](), b[2]()))
    c = digits.make_data({**config, "data_seed": 1})
    assert not torch.equal(a[0][1], c[0][1])


@pytest.mark.parametrize("size", ["quick", "full"])
def test_every_default_remedy_fits_the_models(size):
    for task in (digits.TASK, signals.TASK):
        config = task.config(size)
        canvas = config["canvas"]
        shape = (1, canvas, canvas) if task is digits.TASK else (1, canvas)
        for remedy in task.remedies:  # valid shrinks the maps most: they must not vanish
            out = build_model(config, remedy, shape, 0)(torch.rand(2, *shape))
            assert out.shape == (2, 10), (task.name, remedy)


# ------------------------------------------------------------------------------------------------- the runs

@pytest.mark.parametrize("task, tiny", [(digits, TINY_DIGITS), (signals, TINY_SIGNALS)], ids=["digits", "1d"])
def test_tiny_runs_learn_and_are_deterministic(task, tiny):
    config = task.TASK.config("quick", **tiny)
    seen = []
    a = task.run_one(config, "same", 0, progress=lambda done, total: seen.append(done))
    assert seen == [0, 1, 2] and a["loss"][1] < a["loss"][0]
    assert set(a["accuracy"]) == set(task.TASK.splits) and a["chance"] == 0.1
    bd = a["by_distance"]
    assert bd["distance"] == list(range(len(bd["distance"]))) and set(bd["n"]) == {30}
    assert all(0 <= v <= 1 for v in bd["accuracy"])
    assert task.run_one(config, "same", 0) == a
    assert task.run_one(config, "same", 1)["loss"] != a["loss"]


# ----------------------------------------------------------------------------------------------- the figure

def _fake_runs():
    runs = []
    for i, remedy in enumerate(["same", "circular"]):
        for seed in range(3):
            acc = [0.5 + 0.05 * d * (1 - i) + 0.01 * seed for d in range(6)]
            runs.append({"remedy": remedy, "seed": seed, "metrics": {
                "accuracy": {"center": 0.9}, "loss": [1.0], "chance": 0.1,
                "by_distance": {"distance": list(range(6)), "accuracy": acc, "n": [30] * 6, "unit": "samples"}}})
    runs.append({"remedy": "valid", "seed": 0, "error": "does not fit"})
    return runs


def test_border_figure_has_a_title_labelled_axes_and_a_line_per_remedy():
    fig = plot_border_curve(_fake_runs(), title="border-1d (quick)")
    ax = fig.axes[0]
    assert "border-1d (quick)" in ax.get_title() and "3 seeds" in ax.get_title()
    assert "distance" in ax.get_xlabel() and "(samples;" in ax.get_xlabel() and "accuracy" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["same", "circular", "chance"]
    assert len(ax.collections) == 2  # one band per remedy
    one = plot_border_curve([r for r in _fake_runs() if r.get("seed") == 0])
    assert one.axes[0].get_title() and len(one.axes[0].collections) == 0  # one seed: no band
    with pytest.raises(EdgewiseError, match="no run has by_distance"):
        plot_border_curve([{"remedy": "same", "seed": 0, "error": "x"}])


def test_border_band_stays_inside_the_range_accuracy_can_take():
    runs = _fake_runs()
    for r, acc in zip([r for r in runs if r.get("remedy") == "same"], ([1.0] * 6, [1.0] * 6, [0.7] * 6)):
        r["metrics"]["by_distance"]["accuracy"] = acc  # mean 90 %, interval wider than the 10 % left to 100
    ax = plot_border_curve(runs).axes[0]
    ys = np.concatenate([p.vertices[:, 1] for c in ax.collections for p in c.get_paths()])
    assert ys.max() == pytest.approx(100.0) and ys.min() >= 0.0
