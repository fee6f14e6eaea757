"""Layers that only feed a zero-weight norm run as zeros in the Monte-Carlo sensitivity: the maps are the same,
bit for bit, on both engines, and the model is left as it was."""

import numpy as np
import pytest
import torch

from edgewise import _init, _silence, models, trace
from edgewise import sensitivity as S

pytest.importorskip("timm")

SHAPE = (3, 32, 32)


@pytest.fixture(scope="module")
def seresnet():
    return models.load("timm:seresnet18")


def test_the_silent_layers_are_the_convolutions_of_each_residual_branch(seresnet):
    """timm's SE-ResNet-18 zeroes bn2 of every block: conv1 and conv2 feed it alone. The squeeze-excitation gate
    reads bn2's output (its bias) and scales it: it runs, as do the shortcuts' convolutions."""
    zero = _init.zero_scales(_init.plan(seresnet), seresnet)
    silent = _silence.silent_layers(trace(seresnet, SHAPE), seresnet, zero)
    blocks = [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]
    assert sorted(silent) == sorted(f"{b}.conv{k}" for b in blocks for k in (1, 2))
    assert silent["layer1.0.conv1"] == (64, 8, 8) and silent["layer4.1.conv2"] == (512, 1, 1)
    assert _silence.silent_layers(trace(seresnet, SHAPE), seresnet, []) == {}


@pytest.mark.parametrize("chunk", [1, 2])
def test_the_maps_are_bit_for_bit_those_of_every_layer_running(seresnet, chunk, monkeypatch):
    fast = S.init_sensitivity(seresnet, SHAPE, n_inits=2, seed=3, chunk=chunk)
    monkeypatch.setattr(S, "silent_layers", lambda *a, **k: {})
    slow = S.init_sensitivity(seresnet, SHAPE, n_inits=2, seed=3, chunk=chunk)
    assert np.array_equal(fast.samples, slow.samples) and fast.map.any()


def test_the_model_keeps_its_classes(seresnet):
    before = {n: type(m) for n, m in seresnet.named_modules()}
    S.init_sensitivity(seresnet, SHAPE, n_inits=2, seed=0, in_place=True)  # (its own template: swapped, restored)
    assert {n: type(m) for n, m in seresnet.named_modules()} == before
    assert not any(hasattr(m, "_edgewise_silent") for m in seresnet.modules())
    with pytest.raises(RuntimeError), _silence.silenced(seresnet, {"layer1.0.conv1": (64, 8, 8)}):
        assert type(seresnet.layer1[0].conv1).__name__ == "SilentConv2d"
        raise RuntimeError  # (restored on the way out of an error too)
    assert type(seresnet.layer1[0].conv1) is torch.nn.Conv2d
