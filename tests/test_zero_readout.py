"""A readout layer whose every parameter but its bias is zero (torchvision's ViT starts with a zero head) makes every
input gradient exactly zero: the sensitivity engines then skip the passes, and give the maps the passes give."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgewise import nets
from edgewise.remedies import apply
from edgewise.sensitivity import _Run, gradient_map, init_sensitivity

tv = pytest.importorskip("torchvision")
SHAPE = (3, 32, 32)


def _vit():
    """torchvision's ViT-B/16 for 32 px, marked with its builder: every initialisation starts its head at zero."""
    from edgewise._init import mark_builder

    return mark_builder(tv.models.vit_b_16(image_size=32), "torchvision", "vit_b_16", {"image_size": 32})


@pytest.fixture
def passes(monkeypatch):
    """``calls``: the forward/backward passes the engines ran (one per initialisation in the loop, per chunk in
    vmap); ``off = True`` turns the shortcut off."""
    from types import SimpleNamespace

    from edgewise import sensitivity

    state = SimpleNamespace(calls=0, off=False)
    sample_maps, constant = sensitivity._sample_maps, _Run._constant

    def counted(*args, **kwargs):
        state.calls += 1
        return sample_maps(*args, **kwargs)

    monkeypatch.setattr(sensitivity, "_sample_maps", counted)
    monkeypatch.setattr(_Run, "_constant", lambda self: False if state.off else constant(self))
    return state


class _Head(nn.Module):
    """conv features, a global pool and a head that starts at zero weights (bias random), or its output plus a
    term that does not go through the head (then the output depends on the input)."""

    def __init__(self, bypass: bool = False, head: str = "linear"):
        super().__init__()
        self.conv, self.bypass = nn.Conv2d(1, 4, 3, padding=1), bypass
        self.head = nn.Linear(4, 3) if head == "linear" else nn.Conv2d(4, 3, 1)
        self.init_weights()

    def init_weights(self):  # (the model's own init method: run after the layers' defaults)
        nn.init.zeros_(self.head.weight)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        y = self.head(h.mean((2, 3))) if isinstance(self.head, nn.Linear) else self.head(h)
        return y + x.mean() if self.bypass else y


@pytest.mark.parametrize("chunk", [1, 4], ids=["loop", "vmap"])
def test_a_zero_head_gives_the_zero_maps_without_a_pass(passes, chunk):
    cases = [(_Head, (1, 12, 12)), (lambda: _Head(head="conv"), (1, 12, 12))] + ([(_vit, SHAPE)] if chunk == 1 else [])
    for make, shape in cases:
        s = init_sensitivity(make(), shape, n_inits=4, seed=1, chunk=chunk)
        assert passes.calls == 0 and s.bias_only == [0, 1, 2, 3] and s.readout in ("heads.head", "head")
        passes.off = True
        measured = init_sensitivity(make(), shape, n_inits=4, seed=1, chunk=chunk)
        passes.off = False
        assert passes.calls == (4 if chunk == 1 else 1) and measured.bias_only == []
        assert np.array_equal(s.map, measured.map) and not s.map.any()
        passes.calls = 0


def test_only_a_readout_that_outputs_its_bias(passes):
    # a term past the head: the output depends on the input, the passes run and the map is not zero
    s = init_sensitivity(_Head(bypass=True), (1, 12, 12), n_inits=3, seed=0, chunk=1)
    assert passes.calls == 3 and s.bias_only == [] and s.map.all()
    passes.calls = 0
    # a head with random weights (its own init): every pass runs
    net = nets.from_spec("2*conv3, gap, fc3", (1, 12, 12))
    s = init_sensitivity(net, (1, 12, 12), n_inits=3, seed=0, chunk=1)
    assert passes.calls == 3 and s.bias_only == [] and s.readout is not None and s.map.all()
    # the global remedy's head-like last convolution: zero local weights, random global ones, is not constant
    last = apply(nets.from_spec("conv3, conv3/c2", (1, 10, 10)), "global", input_shape=(1, 10, 10),
                 layers=["conv2"], zero_init=False)
    with torch.no_grad():
        last.conv2.weight.zero_()
        if last.conv2.bias is not None:
            last.conv2.bias.normal_()
    from edgewise.sensitivity import _bias_only

    assert not _bias_only(last.conv2) and _bias_only(_vit().heads.head)


def test_gradient_map_of_a_zero_head():
    vit = _vit()
    s = gradient_map(vit, SHAPE, agg="sq", n_samples=3)
    assert s.readout == "heads.head" and s.map.shape == (32, 32) and not s.samples.any()
    with torch.no_grad():
        vit.heads.head.weight.normal_()
    assert gradient_map(vit, SHAPE, agg="sq", n_samples=3).map.all()


def test_first_keeps_the_bias_only_initialisations():
    s = init_sensitivity(_vit(), SHAPE, n_inits=4, seed=1, chunk=1)
    assert s.first(2).bias_only == [0, 1] and s.to_dict()["bias_only_inits"] == [0, 1, 2, 3]


def test_a_builder_that_zeroes_the_head_is_drawn_once(monkeypatch):
    """torchvision's ViT builder writes its head with zeros: after the first initialisation (drawn, and checked)
    the others are known to be zero maps without drawing their weights."""
    from edgewise import _init

    draws, apply_ = [], _init.apply

    def counted(model, p, seed):
        draws.append(seed)
        return apply_(model, p, seed)

    monkeypatch.setattr(_init, "apply", counted)
    fast = init_sensitivity(_vit(), SHAPE, n_inits=4, seed=1)
    assert len(draws) == 1 and fast.bias_only == [0, 1, 2, 3]
    monkeypatch.setattr(_Run, "always_bias_only", lambda self: False)
    drawn = init_sensitivity(_vit(), SHAPE, n_inits=4, seed=1)
    assert len(draws) == 5 and drawn.bias_only == fast.bias_only and drawn.fixed == fast.fixed
    assert np.array_equal(drawn.map, fast.map) and np.array_equal(drawn.samples, fast.samples)


def test_drawn_once_only_where_the_plan_says_zero():
    from edgewise._init import mark_builder
    from edgewise.sensitivity import _Target

    def run_of(model, shape):
        from edgewise import _init

        return _Run(model, _init.plan(model), _Target(model, None), shape, "all", 1, None, None, torch.float32)

    resnet = mark_builder(tv.models.resnet18(), "torchvision", "resnet18")
    assert not run_of(resnet, SHAPE).always_bias_only()  # a builder with a random head
    assert not run_of(_Head(), (1, 12, 12)).always_bias_only()  # its own init method: known only by drawing
    assert run_of(_vit(), SHAPE).always_bias_only()
