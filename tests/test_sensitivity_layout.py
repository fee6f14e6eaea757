"""The loop engine's channels-last layout for 2-D convolution nets (issue 17): the same maps as the plain layout,
the builder's weights, the layout really used inside the forward pass, and the user's model left as it was."""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from edgewise import _init, limits, models, nets
from edgewise import sensitivity as S
from edgewise.testing.random_nets import BLOCKS, random_net

F64 = torch.float64
# no up-sampling: nearest neighbours create exact ties that max pooling splits differently with rounding
SMOOTH_ENOUGH = tuple(k for k in BLOCKS if k != "upsample")


def _layout(on: bool):
    """Every 2-D convolution net channels-last in the loop (``on``), or none."""
    return mock.patch.object(S, "CHANNELS_LAST_REUSE", 0 if on else math.inf)


def _loop(net, shape, on: bool, **kw):
    with _layout(on):
        return S.init_sensitivity(net, shape, chunk=1, **kw)


def _channels_last(t: torch.Tensor) -> bool:
    """Strictly channels-last: not also contiguous (as a tensor with one channel or 1×1 kernels is)."""
    return t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


class _Spy:
    """What a convolution sees in the loop's forward passes (inputs that require a gradient: not the shape or
    cost probes): the layouts of its input and weight, and the weight."""

    def __init__(self, conv: nn.Module):
        self.layouts, self.weights = [], []

        def hook(mod, inp):  # a function: the private copy of the model (deepcopy) calls this one
            if inp[0].requires_grad:
                self.layouts.append((_channels_last(inp[0]), _channels_last(mod.weight)))
                self.weights.append(mod.weight.detach().clone())

        self.handle = conv.register_forward_pre_hook(hook)


# ------------------------------------------------------------------ the same maps

@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths:UserWarning")
@settings(derandomize=True, max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=random_net(ndim=2, kinds=SMOOTH_ENOUGH, max_blocks=4), to=st.sampled_from(["all", "center", "each"]))
def test_the_channels_last_loop_gives_the_plain_layouts_maps_on_random_2d_nets(case, to):
    """Residual, depthwise/grouped, strided, dilated, padded, pooled, gated, concatenating: float64, to rounding."""
    kw = dict(to=to, n_inits=3, seed=1, dtype=F64, init="default")
    fast = _loop(case.model, case.input_shape, True, **kw)
    plain = _loop(case.model, case.input_shape, False, **kw)
    np.testing.assert_allclose(fast.samples, plain.samples, rtol=1e-9, atol=1e-300)


@pytest.mark.parametrize("spec,shape,to", [
    ("8*conv3", (1, 32, 32), "all"),                                              # deep and narrow
    ("conv3/s2, conv5/d2, maxpool2, res(conv3, conv3), conv3/c6", (3, 33, 29), "center"),  # strided, dilated
    ("conv3, res(conv3, conv3), avgpool2, conv3, gap, fc5", (2, 24, 24), "each"),  # residual, pooled, head
])
def test_the_channels_last_loop_in_float32_is_within_rounding_of_the_plain_layout(spec, shape, to):
    """float32: oneDNN's channels-last convolutions add in another order; the maps agree to 1e-5 of their
    largest value (the benchmark's 16-layer spec net: 1.3e-4, its tolerance 1e-3)."""
    net = nets.from_spec(spec, shape, width=8)
    fast = _loop(net, shape, True, to=to, n_inits=3, seed=2)
    plain = _loop(net, shape, False, to=to, n_inits=3, seed=2)
    assert np.abs(fast.samples - plain.samples).max() <= 1e-5 * np.abs(plain.samples).max()


# ------------------------------------------------------------------ the layout, the weights, the user's model

def test_the_loop_runs_a_2d_convolution_net_channels_last_on_the_builders_weights():
    """Inside the forward pass an inner convolution sees channels-last inputs and weights, and the weights are
    those of torch.manual_seed(s) + the net's own initialisation (reinitialise: its constructor's draws)."""
    shape = (1, 32, 32)
    net = nets.from_spec("3*conv3", shape, width=4)
    assert S.runs_channels_last(net, shape, limits.forward_cost(net, shape)[1])  # by default, above the threshold
    spy = _Spy(net.conv2)
    S.init_sensitivity(net, shape, n_inits=3, seed=5, chunk=1)
    spy.handle.remove()
    assert spy.layouts == [(True, True)] * 3
    for seen, s in zip(spy.weights, S._init_seeds(5, 3)):
        assert torch.equal(seen, S.reinitialise(net, s).conv2.weight)


def test_the_in_place_model_keeps_its_layout_and_gets_the_builders_weights():
    """``in_place=True`` on a torchvision ResNet-18 run channels-last: each initialisation's weights are
    ``torch.manual_seed(s); resnet18(weights=None)``'s, and afterwards the user's parameters are the same tensors,
    in their own (contiguous) layout, holding the last initialisation."""
    shape = (3, 32, 32)
    net = models.load("torchvision:resnet18")
    before = {k: (v, v.stride()) for k, v in net.named_parameters()}
    spy, stem = _Spy(net.layer1[0].conv1), _Spy(net.conv1)  # the stem reads the input itself (3 channels)
    seeds = S._init_seeds(3, 2)
    _loop(net, shape, True, n_inits=2, seed=3, in_place=True)
    spy.handle.remove()
    stem.handle.remove()
    assert spy.layouts == stem.layouts == [(True, True)] * 2
    builds = []
    for s in seeds:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s)
            builds.append(_init._build(("torchvision", "resnet18", {})))
    for seen, build in zip(spy.weights, builds):
        assert torch.equal(seen, build.layer1[0].conv1.weight)
    after = dict(net.named_parameters())
    assert all(after[k] is v and after[k].stride() == stride and v.is_contiguous() for k, (v, stride) in before.items())
    last = builds[-1].state_dict()
    assert all(torch.equal(v, last[k]) for k, v in net.state_dict().items())


@pytest.mark.parametrize("spec,shape,model,expected", [
    ("16*conv3", (1, 64, 64), None, True),            # the benchmark's spec net: 8192 FLOPs per weight
    (None, (3, 64, 64), "torchvision:resnet18", False),  # 27: the copy would cost more than the layout saves
    ("8*conv3", (1, 256), None, False),                # 1-D
    (None, (1, 16, 16), "mlp", False),                # no convolution
])
def test_the_layout_is_chosen_for_2d_convolution_nets_that_reuse_their_weights(spec, shape, model, expected):
    if model == "mlp":
        net = nn.Sequential(nn.Flatten(), nn.Linear(256, 8))
    else:
        net = models.load(model) if model else nets.from_spec(spec, shape, width=32)
    assert S.runs_channels_last(net, shape, limits.forward_cost(net, shape)[1]) is expected


def test_a_net_the_loop_keeps_in_its_own_layout_sees_no_channels_last_tensor():
    shape = (1, 32, 32)
    net = nets.from_spec("3*conv3", shape, width=4)
    spy = _Spy(net.conv2)
    _loop(net, shape, False, n_inits=2, seed=0)
    spy.handle.remove()
    assert spy.layouts == [(False, False)] * 2


def test_the_run_tensors_are_only_those_the_templates_own_will_not_do():
    """Channels-last 4-D weights; with a cast every floating-point tensor (integer buffers keep their dtype)."""
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3))
    state = S._state(net)
    cpu = torch.device("cpu")
    assert S._run_tensors(state, cpu, torch.float32, False) == {}
    runs = S._run_tensors(state, cpu, torch.float32, True)
    assert list(runs) == ["0.weight"] and _channels_last(runs["0.weight"])
    cast = S._run_tensors(state, cpu, F64, True)
    assert set(cast) == {k for k, v in state.items() if v.is_floating_point()}
    assert all(v.dtype == F64 for v in cast.values()) and _channels_last(cast["0.weight"])
    assert "1.num_batches_tracked" not in cast
