"""One-position nudges computed on each position's forward cone (edgewise._cone) against whole forwards."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from edgewise import nets
from edgewise import sensitivity as S
from edgewise._cone import nudge_changes
from edgewise._pad import Pad
from edgewise.testing.random_nets import SpecCase, random_net, random_spec


def _whole(model, x, eps, units):
    """The slow reference: every position nudged in a whole forward, the selected units' changes summed."""
    n = math.prod(x.shape[2:])
    y0 = model(x)
    mask = units(tuple(y0.shape[1:])).to(y0)
    moved = x + eps * torch.eye(n, dtype=x.dtype).reshape(n, 1, *x.shape[2:])
    return ((model(moved) - y0) * mask).flatten(1).sum(dim=1)


def _mask(to):
    return lambda shape: S._units(shape, to, "output")


CHAINS = {
    "default 2-D spec net": (lambda: nets.from_spec(nets.DEFAULT_SPEC, (1, 20, 20)), (1, 20, 20)),
    "the question's 1-D net": (lambda: nets.from_spec(nets.QUESTION_SPEC, (1, 96)), (1, 96)),
    "strided, dilated, depthwise, pooled, nested": (lambda: nn.Sequential(
        nn.Conv2d(2, 4, 3, stride=2, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(4, 4, 5, dilation=2, padding=3, groups=4), nn.BatchNorm2d(4).eval(), nn.AvgPool2d(3, stride=2),
        nn.Tanh(), nn.Sequential(nn.Conv2d(4, 2, (3, 1), padding=(2, 0)), nn.MaxPool2d(2, stride=1, dilation=2))),
        (2, 21, 19)),
    "zero Pad layers, 1-D": (lambda: nn.Sequential(Pad((2, 5)), nn.Conv1d(1, 3, 4, stride=3), nn.GELU(),
                                                   nn.Conv1d(3, 3, 3, groups=3, padding=4), nn.MaxPool1d(3)), (1, 40)),
}


@pytest.mark.parametrize("name", list(CHAINS))
@pytest.mark.parametrize("to", ["all", "center", (1, 0)])
def test_cone_equals_whole_forwards(name, to):
    build, shape = CHAINS[name]
    torch.manual_seed(0)
    model = build().double().eval()
    if to == (1, 0) and len(shape) == 2:
        to = 1
    x = torch.randn(1, *shape, dtype=torch.float64)
    n = math.prod(shape[1:])
    with torch.no_grad():
        fast = nudge_changes(model, x, torch.arange(n), 0.5, _mask(to))  # exact for any nudge, not only small ones
        slow = _whole(model, x, 0.5, _mask(to))
    assert fast is not None and slow.abs().max() > 0
    # float rounding only: a wrong cone would be off by the size of a nudge's effect
    np.testing.assert_allclose(fast.numpy(), slow.numpy(), rtol=0, atol=1e-9 * float(slow.abs().max()))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(random_spec(paddings=("valid", "same", "full")), random_spec(), random_net()))
def test_cone_on_random_nets_is_exact_or_declines(case):
    model = (case.build() if isinstance(case, SpecCase) else case.model).double().eval()
    x = torch.randn(1, *case.input_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    n = math.prod(case.input_shape[1:])
    with torch.no_grad():
        fast = nudge_changes(model, x, torch.arange(n), 0.5, _mask("all"))
        if fast is None:  # residuals, heads, mirrored padding, ...: the caller runs whole forwards
            return
        slow = _whole(model, x, 0.5, _mask("all"))
    np.testing.assert_allclose(fast.numpy(), slow.numpy(), rtol=0, atol=1e-9 * float(slow.abs().max()) + 1e-12)


def test_cone_declines_what_it_cannot_cut():
    x = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    every = torch.arange(64)
    head = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(72, 3)).double()
    circular = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular")).double()
    mirrored = nn.Sequential(Pad((1, 1, 1, 1), "reflect"), nn.Conv2d(1, 2, 3)).double()
    from edgewise.remedies import apply

    partial = apply(nets.from_spec("2*conv3", (1, 8, 8)), "partial", input_shape=(1, 8, 8)).double()  # a subclass
    training = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Dropout(0.5)).double().train()
    for model in (head, circular, mirrored, partial, training, nn.Conv2d(1, 2, 3).double()):
        assert nudge_changes(model, x, every, 1e-3, _mask("all")) is None


def test_perturbation_uses_the_cone_and_agrees_with_whole_forwards(monkeypatch):
    net, shape = nets.from_spec("2*conv3, maxpool2, conv3", (1, 12, 12)), (1, 12, 12)
    calls = []
    real = S.nudge_changes
    monkeypatch.setattr(S, "nudge_changes", lambda *a, **k: calls.append(1) or real(*a, **k))
    fast = S.perturbation(net, shape, n_signs=16, n_samples=2, seed=2)
    assert calls
    monkeypatch.setattr(S, "nudge_changes", lambda *a, **k: None)
    slow = S.perturbation(net, shape, n_signs=16, n_samples=2, seed=2)
    # the old path subtracts two whole-output sums: its own rounding is ~1e-12·|f|/ε of the map's values
    np.testing.assert_allclose(fast.single, slow.single, rtol=1e-6, atol=1e-9 * slow.single.max())
    np.testing.assert_array_equal(fast.gradient, slow.gradient)
    np.testing.assert_array_equal(fast.random_signs, slow.random_signs)
    assert fast.fd_error == pytest.approx(slow.fd_error, rel=1e-5, abs=1e-9)


def _boxes_seen(model, shape, monkeypatch) -> float | None:
    """The largest share of a layer's grid that nudge_changes's boxes take, recorded as it runs (None: declined)."""
    import edgewise._cone as cone

    seen, step = [], cone._step

    def recording(spec, base, vals, start):
        out, new_start = step(spec, base, vals, start)
        sizes = [(base.shape[2 + a] + lo + hi - d * (k - 1) - 1) // s + 1
                 for a, (k, s, d, (lo, hi)) in enumerate(zip(*spec[:4]))]
        seen.append(math.prod(out.shape[2:]) / math.prod(sizes))
        return out, new_start

    monkeypatch.setattr(cone, "_step", recording)
    x = torch.randn(1, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        done = nudge_changes(model, x, torch.arange(min(3, math.prod(shape[1:]))), 0.5, _mask("all"))
    return None if done is None else max(seen, default=1 / math.prod(shape[1:]))


@pytest.mark.parametrize("name", list(CHAINS))
def test_cone_fraction_is_the_largest_box_the_nudges_take(name, monkeypatch):
    from edgewise._cone import cone_fraction

    build, shape = CHAINS[name]
    model = build().double().eval()
    assert cone_fraction(model, shape[1:]) == pytest.approx(_boxes_seen(model, shape, monkeypatch))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(case=st.one_of(random_spec(paddings=("valid", "same", "full")), random_net()))
def test_cone_fraction_on_random_nets(case, monkeypatch):
    from edgewise._cone import cone_fraction

    model = (case.build() if isinstance(case, SpecCase) else case.model).double().eval()
    with monkeypatch.context() as mp:
        seen = _boxes_seen(model, case.input_shape, mp)
    fraction = cone_fraction(model, case.input_shape[1:])
    if seen is None:  # declined: not a chain (then no fraction either), or a chain with a flat output
        return
    assert fraction == pytest.approx(seen)
