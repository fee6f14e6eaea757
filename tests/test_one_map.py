"""The one-map counting path (``pathways._one_map``) against the general engine, number for number.

Where every node on the way carries one count map for all its channels (every channel of the target at the
selected positions, through convolutions, pools, concatenations, sums, Linear layers and flattening),
``pathways`` counts without a channel index per node. It must give the general engine's numbers bit for bit (the
same sums in the same order), in every number system, and step aside where a node does not keep one map.
"""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest
import torch.nn as nn
import torchvision
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import edgewise
from edgewise._counts import ExactCounts, LogCounts, ScaledCounts
from edgewise.nets import from_spec
from edgewise.testing import brute_pathways
from edgewise.testing.random_nets import random_net

P = importlib.import_module("edgewise.pathways")
SETTINGS = settings(derandomize=True, max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


def _both(graph, to, num_cls, target=None):
    """(the one-map path's input row or None, the general engine's input row), in number system ``num_cls``."""
    target = target or graph.output
    mask = P.select_units(graph[target].shape, to, target)
    one = P._one_map(graph, target, mask, num_cls())
    general = P._propagate(graph, target, to, num_cls(), keep=True)[graph.input]
    return one, general.rows[general.index[0]]


def _same(a, b) -> None:
    """Bit-identical rows: scaled float64 (mantissas, exponent and bounds), logs, or exact integers."""
    if isinstance(a, np.ndarray) and a.dtype == object:
        assert a.tolist() == b.tolist()
        return
    m_a, m_b = (getattr(a, "m", a), getattr(b, "m", b))
    m_a, m_b = (np.asarray(m.cpu() if hasattr(m, "cpu") else m) for m in (m_a, m_b))
    assert m_a.shape == m_b.shape
    assert np.array_equal(m_a, m_b, equal_nan=True)
    for attr in ("e", "hi", "lo"):
        assert getattr(a, attr, None) == getattr(b, attr, None), attr


@SETTINGS
@given(random_net(), st.sampled_from(["all", "center"]), st.sampled_from([ScaledCounts, ExactCounts, LogCounts]))
def test_random_nets_bit_for_bit(case, to, num_cls):
    graph = edgewise.trace(case.model, case.input_shape)
    one, general = _both(graph, to, num_cls)
    if one is not None:
        _same(one[0], general)


@pytest.mark.parametrize("name", ["densenet121", "resnet50", "googlenet", "mobilenet_v3_small", "vgg11"])
def test_zoo_models_take_it_and_agree(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = edgewise.trace(torchvision.models.get_model(name, weights=None), (3, 64, 64))
    for to in ("all", "center"):
        one, general = _both(graph, to, ScaledCounts)
        assert one is not None, f"{name} to={to}: the one-map path stepped aside"
        _same(one[0], general)


def test_counts_beyond_float64_keep_their_exponents():
    graph = edgewise.trace(from_spec("200*conv3", (1, 40), padding="same", width=16), (1, 40))
    one, general = _both(graph, "all", ScaledCounts)
    assert one is not None and one.e > 0  # (rescaled on the way)
    _same(one[0], general)
    assert edgewise.pathways(graph).scale > 0


def test_a_channel_selection_steps_aside():
    graph = edgewise.trace(torchvision.models.shufflenet_v2_x0_5(weights=None), (3, 64, 64))
    assert any(nd.kind == "select" for nd in graph)
    assert _both(graph, "all", ScaledCounts)[0] is None


class _Unflatten(nn.Module):
    """A vector back to a map: its channels then carry different maps (each read by one vector unit)."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 2, 3, padding=1), nn.Linear(2 * 6 * 6, 2 * 6 * 6)
        self.out = nn.Conv2d(2, 1, 3)

    def forward(self, x):
        return self.out(self.fc(self.conv(x).flatten(1)).view(-1, 2, 6, 6))


def test_a_node_that_splits_the_map_steps_aside_midway():
    graph = edgewise.trace(_Unflatten(), (1, 6, 6))
    assert _both(graph, "center", ScaledCounts)[0] is None
    assert edgewise.pathways(graph, to="center", exact=True).counts.tolist() == \
        brute_pathways(graph, to="center").tolist()


def test_pathways_uses_it_and_layer_counts_does_not():
    graph = edgewise.trace(from_spec("3*conv3", (1, 9), padding="valid", width=2), (1, 9))
    calls = []
    original = P._one_map

    def spy(*args):
        calls.append(1)
        return original(*args)

    P._one_map = spy
    try:
        assert edgewise.pathways(graph, exact=True).counts.tolist() == brute_pathways(graph, to="all").tolist()
        assert calls == [1]
        edgewise.layer_counts(graph)
        assert calls == [1]  # (every node's counts: the general engine)
    finally:
        P._one_map = original
