"""Which layers the probes read by default: the convolutions that run, in the order they run."""

import numpy as np
import pytest
import torch
from torch import nn

from edgewise import probe
from edgewise.errors import EdgewiseError
from edgewise.probe._common import check_layers, conv_layers


class OutOfOrder(nn.Module):
    """Registers its head before its stem, and has an auxiliary head that runs only in training (as
    GoogLeNet's and Inception's do)."""

    def __init__(self):
        super().__init__()
        self.head = nn.Conv2d(4, 2, 3, padding=1)
        self.aux = nn.Conv2d(4, 2, 1)
        self.stem = nn.Conv2d(1, 4, 3, padding=1)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        if self.training:
            self.aux(x)
        return self.head(x).mean((2, 3))


def test_default_layers_are_those_that_run_in_the_order_they_run():
    net = OutOfOrder().eval()
    assert conv_layers(net) == ["head", "aux", "stem"]  # registration order, without an input
    assert conv_layers(net, (1, 8, 8)) == ["stem", "head"]
    assert check_layers(net, None, (1, 8, 8)) == ["stem", "head"]
    assert check_layers(net, "head,stem", (1, 8, 8)) == ["head", "stem"]  # a user's choice is kept as given
    assert not any(m._forward_hooks for m in net.modules())  # the hooks are removed


def test_a_probe_on_a_model_with_a_training_only_head_reads_the_layers_that_run():
    r = probe.bias(OutOfOrder().eval(), "1x8x8", data="noise", n=4, progress=False)
    assert r.layers == ["stem", "head"]


def test_a_model_without_convolutions_is_still_refused_with_its_advice():
    with pytest.raises(EdgewiseError, match="no convolution"):
        check_layers(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), None, (1, 2, 2))


def test_a_cached_result_read_back_is_named_as_the_call_names_the_model(tmp_path):
    from edgewise.probe._common import Subject

    torch.manual_seed(0)  # (the weights decide how the sentence reads: one layer reading padding or several)
    net = OutOfOrder().eval()
    first = probe.bias(Subject(net, "first name", (1, 8, 8), "noise"), n=4, cache=tmp_path, progress=False)
    again = probe.bias(Subject(net, "second name", (1, 8, 8), "noise"), n=4, cache=tmp_path, progress=False)
    assert first.model == "first name" and again.model == "second name"
    assert len(list(tmp_path.iterdir())) == 1  # read back, not computed again
    np.testing.assert_array_equal(first.deviation, again.deviation)
    units = probe.units(Subject(net, "third name", (1, 8, 8), "noise"), n=4, cache=tmp_path, progress=False)
    read = probe.units(Subject(net, "fourth", (1, 8, 8), "noise"), n=4, cache=tmp_path, progress=False)
    assert (units.name, read.name) == ("third name", "fourth")
    assert "of fourth " in read.text()[0] and "third name" not in read.text()[0]
