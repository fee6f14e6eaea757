"""Every remedy layer is understood exactly by the tracer, the pathway engine and the geometry."""

from __future__ import annotations

import numpy as np
import pytest

from edgewise import nets, pathways, receptive_field, remedies, trace
from edgewise.testing.brute import brute_pathways

CASES = [("conv3, conv5/d2, conv3/s2", (1, 17, 15)), ("3*conv3", (2, 13)), ("conv4, conv3", (1, 8, 10))]


def _apply(model, name, shape):
    return remedies.apply(model, name, input_shape=shape)


@pytest.mark.parametrize("name", remedies.names())
@pytest.mark.parametrize("spec,shape", CASES)
def test_remedied_nets_count_exactly_as_brute_force(name, spec, shape):
    net = _apply(nets.from_spec(spec, shape, width=2), name, shape)
    counts = pathways(net, shape, exact=True).counts
    np.testing.assert_array_equal(np.asarray(counts, dtype=object), np.asarray(brute_pathways(net, shape), dtype=object))


@pytest.mark.parametrize("name", [n for n in remedies.names() if n in nets.PADDINGS])
@pytest.mark.parametrize("spec,shape", CASES)
def test_padding_remedies_count_like_spec_nets_built_with_that_padding(name, spec, shape):
    rewritten = _apply(nets.from_spec(spec, shape, padding="same", width=2), name, shape)
    built = nets.from_spec(spec, shape, padding=name, width=2)
    np.testing.assert_array_equal(pathways(rewritten, shape, exact=True).counts,
                                  pathways(built, shape, exact=True).counts)


def test_partial_and_coordconv_connect_like_zero_padding():
    shape = (1, 12, 12)
    net = nets.from_spec("4*conv3", shape, width=2)
    same = pathways(net, shape, exact=True).counts
    for name in ("partial", "coordconv"):
        np.testing.assert_array_equal(pathways(_apply(net, name, shape), shape, exact=True).counts, same)


def test_global_connections_shrink_the_gap_and_reach_everywhere():
    shape = (1, 16, 16)
    net = nets.from_spec("4*conv3", shape, width=2)
    before = pathways(net, shape).summary["center_corner_ratio"]
    glob = _apply(net, "global", shape)
    assert pathways(glob, shape).summary["center_corner_ratio"] < before / 2
    assert receptive_field(glob, shape).layers[-1].size == (16, 16)


def test_torchvision_rewrites_trace():
    tv = pytest.importorskip("torchvision")
    shape = (3, 32, 32)
    model = tv.models.resnet18(weights=None)
    for name in ("symmetric", "partial", "coordconv", "global"):
        graph = trace(_apply(model, name, shape), shape)
        assert graph["conv1"].kind == "conv"
        assert pathways(graph).summary["center_corner_ratio"] > 0
