"""The public pathways API: selectors, summaries, saving, and trace reuse."""

import json
import math
import os

import numpy as np
import pytest
import torch
import torch.nn as nn

import edgewise
from edgewise import EdgewiseError, nets, pathways, trace
from edgewise.maps import anchor_points, position_summary


def net(spec="3*conv3", shape=(1, 7, 5), padding="valid", **kw):
    return nets.from_spec(spec, shape, padding=padding, width=1, **kw)


def test_selectors_on_a_non_square_map():
    model = net("2*conv3", (1, 7, 5))  # output grid 3x1
    p_all = pathways(model, (1, 7, 5), exact=True)
    assert p_all.shape == (7, 5) and p_all.counts[0, 0] == 1 and p_all.counts[3, 2] == 7 * 3
    top = pathways(model, (1, 7, 5), to=(0, 0), exact=True)
    assert top.counts.sum() == 9 * 9 and np.argwhere(top.counts > 0).max(axis=0).tolist() == [4, 4]
    assert pathways(model, (1, 7, 5), to="center", exact=True).counts.tolist() == \
        pathways(model, (1, 7, 5), to=(1, 0), exact=True).counts.tolist()


def test_to_position_is_row_col_and_checked():
    g = trace(nets.from_spec("conv3", (1, 6, 4), padding="same", width=1), (1, 6, 4))
    p = pathways(g, to=(5, 0), exact=True)  # bottom-left output unit
    assert np.argwhere(p.counts > 0).tolist() == [[4, 0], [4, 1], [5, 0], [5, 1]]
    with pytest.raises(EdgewiseError, match=r"to=\(6, 0\) lies outside layer 'conv1', whose spatial shape is \(6, 4\)"):
        pathways(g, to=(6, 0))
    with pytest.raises(EdgewiseError, match="2 integer coordinate"):
        pathways(g, to=3)
    with pytest.raises(EdgewiseError, match="2 integer coordinate"):
        pathways(g, to="middle")


def test_layer_target_and_non_spatial_output():
    model = nets.from_spec("2*conv3, gap, fc4", (1, 8), padding="same", width=2)
    p = pathways(model, (1, 8), exact=True)
    # every input unit reaches every logit: paths = 4 logits x 2 gap channels x conv paths
    to_gap = pathways(model, (1, 8), layer="gap1", exact=True)
    assert (p.counts == 4 * to_gap.counts).all()
    with pytest.raises(EdgewiseError, match="Did you mean 'conv2'"):
        pathways(model, (1, 8), layer="conv22")


def test_summary_values_and_ratios():
    p = pathways(net("4*conv3", (1, 9)), (1, 9), exact=True)
    s = p.summary
    assert s["center"] == 19 and s["edge"] == 1 and s["corner"] == 1 and s["center_edge_ratio"] == 19.0
    assert s["log10_center"] == pytest.approx(math.log10(19)) and s["reachable_fraction"] == 1.0
    f = pathways(net("4*conv3", (1, 9)), (1, 9))
    assert f.summary["center_edge_ratio"] == pytest.approx(19.0, rel=1e-12)


def test_anchor_points_and_undefined_ratio():
    assert anchor_points((5, 4)) == {"center": [(2, 1)], "edge": [(0, 1), (4, 1), (2, 0), (2, 3)],
                                     "corner": [(0, 0), (0, 3), (4, 0), (4, 3)]}
    s = position_summary(np.zeros((3, 3)))
    assert math.isnan(s["center_edge_ratio"])
    s = position_summary(np.array([0.0, 2.0, 0.0]))
    assert s["center_edge_ratio"] == math.inf
    # a zero centre over a positive border is 0 (it was 0/0 whenever the centre was zero)
    s = position_summary(np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]))
    assert s["center_corner_ratio"] == 0.0 and s["log10_center_corner_ratio"] == -math.inf
    assert s["center_edge_ratio"] == 0.0


def test_huge_counts_are_scaled_not_overflowed():
    p = pathways(nets.from_spec("120*conv3", (1, 300), padding="same", width=256, activation=None), (1, 300))
    assert p.scale > 0 and np.isfinite(p.counts).all() and (p.counts > 0).all()
    assert p.log10.max() > 300 and p.summary["log10_center"] == pytest.approx(p.log10[149], rel=1e-12)


def test_save_json_npy_and_permissions(tmp_path):
    p = pathways(net("4*conv3", (1, 9)), (1, 9), exact=True)
    paths = p.save(tmp_path / "run")
    assert [x.name for x in paths] == ["pathways.json", "pathways.log10.npy"]
    data = json.loads(paths[0].read_text())
    assert data["counts"] == [1, 4, 10, 16, 19, 16, 10, 4, 1] and data["shape"] == [9] and data["exact"]
    np.testing.assert_allclose(np.load(paths[1]), np.log10(data["counts"]))
    umask = os.umask(0)
    os.umask(umask)
    assert paths[0].stat().st_mode & 0o777 == 0o666 & ~umask
    assert json.loads(pathways(net("4*conv3", (1, 9)), (1, 9)).to_json())["counts"][4] == 19.0


def test_trace_is_reused_until_the_model_changes():
    model = nets.from_spec("2*conv3", (1, 10), padding="same")
    g = trace(model, (1, 10))
    assert trace(model, (1, 10)) is g and trace(model, (1, 12)) is not g
    model.conv2.stride = (2,)
    g2 = trace(model, (1, 10))
    assert g2 is not g and g2["conv2"].shape == (8, 5)
    model.conv2 = nn.Conv1d(8, 8, 5, padding=2)
    assert trace(model, (1, 10))["conv2"].axes[0].kernel == 5


def test_spec_strings_accept_padding():
    assert pathways("4*conv3", (1, 9), padding="valid", exact=True).counts.tolist()[0] == 8**4
    assert edgewise.receptive_field("4*conv3", (1, 9), padding="valid")["conv4"].size == (9,)


def test_results_remember_the_padding_of_spec_nets():
    assert pathways("3*conv3", (1, 9), padding="reflect").padding == "reflect"
    assert edgewise.receptive_field("3*conv3", (1, 9), padding="full").to_dict()["padding"] == "full"
    assert pathways(nn.Conv1d(1, 1, 3), (1, 9)).padding is None  # a user model defines its own


def _residual_dense_net():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(2, 2, 3, padding=1), nn.Conv2d(4, 2, 1)
            self.c = nn.Conv2d(2, 4, 3, stride=2, padding=1, groups=2)

        def forward(self, x):
            y = self.a(x) + x
            return self.c(self.b(torch.cat([x, y], 1)) + y)

    return Block()


def test_torch_tensor_counting_path_matches_numpy():
    """The path other devices take (torch tensors instead of numpy), run on the CPU."""
    from edgewise._counts import ScaledCounts
    from edgewise._counts.common import _Cache
    from edgewise.pathways import _propagate

    graph = trace(_residual_dense_net(), (2, 11, 9))
    as_torch = ScaledCounts("cpu")
    as_torch._np, as_torch._cache = False, _Cache()
    rows = _propagate(graph, graph.output, "all", as_torch, keep=False)[graph.input].full()
    expected = pathways(graph, exact=True).counts.astype(float)
    assert np.array_equal(np.ldexp(rows.m[0].numpy(), rows.e), expected)


def test_device_argument_on_cpu_and_cuda():
    graph = trace(_residual_dense_net(), (2, 11, 9))
    cpu = pathways(graph, device="cpu").counts
    assert np.array_equal(cpu, pathways(graph).counts)
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    assert np.array_equal(pathways(graph, device="cuda").counts, cpu)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device on this machine"))])
def test_the_autograd_oracle_runs_on_the_device_asked_for(device):
    from edgewise.testing.oracle import autograd_pathways

    model = nets.from_spec("conv3, maxpool2, conv3/s2", (1, 12, 12), width=2)
    expected = pathways(model, (1, 12, 12)).counts
    np.testing.assert_array_equal(autograd_pathways(model, (1, 12, 12), device=device), expected)
