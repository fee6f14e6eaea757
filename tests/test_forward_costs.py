"""limits.forward_costs: activation bytes, FLOPs and multiply-adds of one forward pass, measured in one pass and
remembered by the architecture's fingerprint (another object of the same architecture, or the remedy comparison
asking again after apply's probe, runs nothing)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgewise import limits
from edgewise.remedies import apply, multiply_adds

tv = pytest.importorskip("torchvision")


@pytest.fixture
def passes(monkeypatch):
    """The forward passes forward_costs runs (a list of the models measured), from a cleared memo."""
    limits._COSTS.clear()
    seen, measure = [], limits._measure

    def counted(module, x):
        seen.append(module)
        return measure(module, x)

    monkeypatch.setattr(limits, "_measure", counted)
    yield seen
    limits._COSTS.clear()


def _fresh(module, shape) -> limits.Cost:
    limits._COSTS.clear()
    return limits.forward_costs(module, shape)


def _macs(module, shape) -> int:
    """multiply_adds as it was defined before it shared the pass: a hook per convolution and linear layer."""
    total = [0]

    def hook(mod, _inp, out):
        total[0] += sum(p[0].numel() for n, p in mod.named_parameters(recurse=False) if n.endswith("weight")) \
            * out[0].numel()

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        module.eval()(torch.zeros((1, *shape)))
    for h in handles:
        h.remove()
    return total[0]


def test_remembered_by_architecture_and_input_shape(passes):
    shape = (3, 32, 32)
    a, b = tv.models.resnet18(), tv.models.resnet18()
    first = limits.forward_costs(a, shape)
    assert limits.forward_costs(a, shape) == limits.forward_costs(b, shape) == first and passes == [a]
    assert first.multiply_adds == _macs(a, shape) and limits.forward_cost(a, shape) == first[:2]
    wider = limits.forward_costs(a, (3, 48, 48))  # another input size: measured
    assert passes == [a, a] and wider.activations > first.activations
    b.conv1.stride = (1, 1)  # another architecture: measured, and only that object's
    changed = limits.forward_costs(b, shape)
    assert passes == [a, a, b] and changed.activations > first.activations
    assert limits.forward_costs(a, shape) == first and len(passes) == 3
    assert changed == _fresh(b, shape) and first == _fresh(a, shape)


def test_a_remedy_probe_measures_for_the_comparison(passes):
    shape = (3, 32, 32)
    for remedy in ("global", "coordconv", "circular"):
        new = apply(tv.models.resnet18(), remedy, input_shape=shape)  # the probe: one pass (global: draws)
        measured = len(passes)
        cost = limits.forward_costs(new, shape)
        assert len(passes) == measured and multiply_adds(new, shape) == cost.multiply_adds == _macs(new, shape)
        assert cost == _fresh(new, shape), remedy


def _flop_counter(module, shape) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module.eval()(torch.zeros((1, *shape)))
    return int(counter.get_total_flops())


def test_drawing_the_global_connections_is_counted_from_shapes(passes, monkeypatch):
    """The global remedy draws its connections in its first pass (random keys, sorts, comparisons; at 64 px the
    stem's draw with replacement and redraws): FlopCounterMode counts none of them, so that pass is counted from
    shapes alone, not run again under FlopCounterMode."""
    import copy

    import torch.utils.flop_counter

    shape = (3, 64, 64)
    undrawn = apply(tv.models.resnet18(), "global")  # no input shape: drawn at its first pass
    want = _flop_counter(copy.deepcopy(undrawn), shape)

    def refuse(*args, **kwargs):
        raise AssertionError("counted under FlopCounterMode")

    monkeypatch.setattr(torch.utils.flop_counter, "FlopCounterMode", refuse)
    assert limits.forward_costs(undrawn, shape).flops == want and undrawn.conv1._drawn_for == (64, 64)


def test_modes_restored_and_training_statistics_untouched(passes):
    net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.Dropout(), nn.Conv2d(8, 8, 3))
    net.train()
    bn = next(m for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    before = bn.running_mean.clone()
    assert limits.forward_costs(net, (1, 12, 12)).multiply_adds == 10 * 10 * 8 * 9 + 8 * 8 * 8 * 72
    assert net.training and all(m.training for m in net.modules()) and torch.equal(bn.running_mean, before)
