"""A task's network trained outside a sweep: the same weights as the sweep's run, and as a model reference."""

import pytest
import torch

from edgewise import EdgewiseError, models
from edgewise.experiments import trained_model
from edgewise.experiments.tasks import absolute
from edgewise.experiments.train import accuracy

TINY = {"epochs": 2, "n_train": 128, "n_test": 64}


def test_same_network_as_the_sweeps_run():
    net = trained_model("absolute-position", "full", 1, **TINY)
    config = absolute.TASK.config("quick", **TINY)
    _, tests, shape = absolute.make_data(config)
    run = absolute.run_one(config, "full", 1)
    assert net.input_shape == shape and not net.training
    assert accuracy(net, *tests["similar"]) == run["accuracy"]["similar"]
    assert net.experiment["remedy"] == "full" and net.experiment["config"]["epochs"] == 2


def test_model_reference_and_errors():
    net = models.load("experiment:border-1d:circular:1")
    assert net.input_shape[0] == 1 and net.experiment["task"] == "border-1d" and net.experiment["seed"] == 1
    assert net(torch.zeros(2, *net.input_shape)).shape == (2, 10)
    with pytest.raises(EdgewiseError, match="task 'symmetry' has no single trained network per remedy"):
        trained_model("symmetry", "same")
    with pytest.raises(EdgewiseError, match="did you mean 'circular'"):
        trained_model("border-1d", "circulr")
    with pytest.raises(EdgewiseError, match=r"expected experiment:TASK\[:REMEDY\[:SEED\]\]"):
        models.load("experiment:")
    with pytest.raises(EdgewiseError, match="the seed must be a number"):
        models.load("experiment:border-1d:same:x")
