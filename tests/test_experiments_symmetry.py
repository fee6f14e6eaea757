"""The ``symmetry`` task: identical filters stay identical under a constant init and diverge under a random one."""

import io
import json
import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from edgewise import EdgewiseError
from edgewise.experiments.tasks import symmetry
from edgewise.report.symmetry import plot_symmetry

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

#: a few steps on a few real digits: 256 / 32 = 8 steps an epoch
TINY = {"n_train": 256, "n_test": 128, "batch_size": 32, "epochs": 2}
LAYERS = {"conv1", "conv2"}


def _run(init, seed=0, **over):
    return symmetry.run_one(symmetry.TASK.config("quick", **{**TINY, **over}), init, seed)


@pytest.fixture(scope="module")
def constant():
    return _run("constant")


@pytest.fixture(scope="module")
def random():
    return _run("random")


def test_similarity_measures():
    same = symmetry.similarity(torch.ones(4, 1, 3, 3) * 0.3)
    assert same["max_diff"] == 0.0 and same["cos_min"] == pytest.approx(1.0, abs=1e-12)
    two = symmetry.similarity(np.array([[1.0, 0.0], [0.0, 2.0]]))
    assert two == {"cos_mean": 0.0, "cos_min": 0.0, "cos_max": 0.0, "max_diff": 2.0}
    # zero vectors (dead units' gradients): identical to each other, unrelated to the rest; never NaN
    assert symmetry.similarity(np.zeros((3, 4)))["cos_min"] == 1.0
    assert symmetry.similarity(np.array([[0.0, 0.0], [1.0, 0.0]]))["cos_max"] == 0.0


def test_constant_init_keeps_filters_and_gradients_exactly_identical(constant):
    steps = 2 * 256 // 32
    assert set(constant["similarity"]) == LAYERS
    for layer, curves in constant["similarity"].items():
        assert set(curves) == set(symmetry.CURVES)
        assert all(len(v) == steps for v in curves.values())
        # exact ties, not merely close: the same arithmetic runs for every channel (see the module docstring)
        assert max(curves["filter_max_diff"]) == 0.0 and max(curves["grad_max_diff"]) == 0.0
        assert min(curves["filter_cos_min"]) > 1 - 1e-12 and min(curves["grad_cos_min"]) > 1 - 1e-12
        final = constant["final"][layer]
        assert final["filter_max_diff"] == 0.0 and final["distinct_filters"] == 1 and final["filters"] == 8
    w = np.array(constant["filters"]["weights"])
    assert constant["filters"]["layer"] == "conv1" and w.shape == (8, 1, 3, 3)
    assert np.array_equal(w, np.broadcast_to(w[:1], w.shape))
    assert np.ptp(w[0]) > 0  # training moved the taps of the one filter apart: it did learn


def test_random_init_filters_and_gradients_differ(random):
    for layer, curves in random["similarity"].items():
        assert min(curves["filter_max_diff"]) > 0.01 and min(curves["grad_max_diff"]) > 0
        assert max(curves["filter_cos_mean"]) < 0.9 and max(curves["grad_cos_min"]) < 1.0
        assert random["final"][layer]["distinct_filters"] == 8


def test_a_few_seeded_steps_lower_the_loss_for_both_inits():
    for metrics in (_run("constant", epochs=3), _run("random", epochs=3)):
        loss = metrics["loss"]
        assert len(loss) == 3 and all(math.isfinite(v) for v in loss) and loss[-1] < loss[0]
        assert 0 <= metrics["accuracy"]["test"] <= 1 and set(metrics["accuracy"]) == {"test"}


def test_same_seed_same_metrics(constant, random):
    assert _run("constant") == constant and _run("random") == random
    json.loads(json.dumps(constant, allow_nan=False))  # plain JSON, as the runner writes it
    assert _run("random", seed=1)["final"] != random["final"]


def test_unknown_init_names_the_valid_ones():
    with pytest.raises(EdgewiseError, match="unknown init 'zeros'.*constant, random"):
        _run("zeros")
    assert symmetry.TASK.remedies == ("constant", "random") and symmetry.TASK.axis == "init"


def test_resumed_run_matches_an_uninterrupted_one(tmp_path, random):
    ckpt = tmp_path / "run.ckpt"
    config = symmetry.TASK.config("quick", **{**TINY, "epochs": 1})
    symmetry.run_one(config, "random", 0, checkpoint=ckpt)  # "interrupted" after epoch 1
    assert ckpt.exists()
    resumed = symmetry.run_one({**config, "epochs": 2}, "random", 0, checkpoint=ckpt)
    assert resumed == random  # curves of epoch 1 come back from the checkpoint, epoch 2 continues them


def test_figure_has_titles_labels_and_skips_failed_runs(constant, random):
    runs = [{"remedy": "constant", "seed": 0, "metrics": constant}, {"remedy": "random", "seed": 0, "metrics": random},
            {"remedy": "random", "seed": 1, "error": "boom"}]
    fig = plot_symmetry(runs, title="tiny")
    assert isinstance(fig, Figure) and fig._suptitle.get_text() == "tiny"
    curves = [ax for ax in fig.get_axes() if ax.get_xlabel() == "optimiser step"]
    assert len(curves) == 4 and all(ax.get_title() and ax.get_ylabel() for ax in curves)
    assert any(ax.get_yscale() == "log" for ax in curves)
    assert any(sub.legends for sub in fig.subfigs)
    fig.savefig(io.BytesIO(), format="png", dpi=40)
    with pytest.raises(EdgewiseError, match="no run recorded"):
        plot_symmetry(runs[2:])
