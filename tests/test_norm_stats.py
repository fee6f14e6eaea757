"""norm_stats="count": normalisation statistics as connections, against the autograd oracle and by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import edgewise
from edgewise import EdgewiseError
from edgewise.cli import main
from edgewise.testing.oracle import autograd_pathways

SHAPE = (2, 6, 7)


class Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def sandwich(*mid, c=4, shape=SHAPE):
    """conv → normalisation → conv, so that paths enter and leave the normalisation at several positions."""
    conv = nn.Conv2d if len(shape) == 3 else nn.Conv1d
    torch.manual_seed(0)
    return nn.Sequential(conv(shape[0], c, 3, padding=1), *mid, conv(c, c, 3, padding=1))


def channels_last(norm):
    return [Fn(lambda x: x.permute(0, 2, 3, 1)), norm, Fn(lambda x: x.permute(0, 3, 1, 2))]


CASES = {
    "GroupNorm": lambda: sandwich(nn.GroupNorm(2, 4)),
    "GroupNorm 1-D": lambda: sandwich(nn.GroupNorm(2, 4), shape=(2, 9)),
    "InstanceNorm": lambda: sandwich(nn.InstanceNorm2d(4, affine=True)),
    "BatchNorm without running statistics": lambda: sandwich(nn.BatchNorm2d(4, track_running_stats=False)),
    "LayerNorm over (H, W)": lambda: sandwich(nn.LayerNorm((6, 7))),
    "LayerNorm over (C, H, W)": lambda: sandwich(nn.LayerNorm((4, 6, 7))),
    "LayerNorm channels-last": lambda: sandwich(*channels_last(nn.LayerNorm(4))),
    "RMSNorm channels-last": lambda: sandwich(*channels_last(nn.RMSNorm(4))),
    "F.normalize over channels": lambda: sandwich(Fn(lambda x: F.normalize(x, dim=1))),
    "F.group_norm": lambda: sandwich(Fn(lambda x: F.group_norm(x, 2))),
}


def traced(net, shape=SHAPE, norm_stats="count"):
    return edgewise.pathways(net, shape, norm_stats=norm_stats).counts


@pytest.mark.parametrize("case", sorted(CASES))
def test_counted_statistics_equal_the_oracle_and_change_the_counts(case):
    net = CASES[case]()
    shape = (2, 9) if "1-D" in case else SHAPE
    counted = traced(net, shape)
    np.testing.assert_allclose(counted, autograd_pathways(net, shape, norm_stats="count"), rtol=1e-12)
    ignored = traced(net, shape, "ignore")
    np.testing.assert_allclose(ignored, autograd_pathways(net, shape), rtol=1e-12)
    assert (counted > ignored).all()  # every unit gains the paths through the statistics


def test_group_norm_by_hand():
    """conv3 (2→4) → GroupNorm(2 groups) → conv3 (4→4), same padding, 6×6, to all outputs.

    Behind the GroupNorm a unit (c, p) reaches 4·a(p) outputs, a(p) = how many 3×3 windows cover p
    (4 at a corner, 9 inside; Σ a = 16² = 256). With statistics counted it also reaches, through every
    (c', p') of its group of 2 channels, 4·a(p'): 4·a(p) + 2·4·256. The first conv sums that over the 4
    channels and the window of each input position."""
    net = sandwich(nn.GroupNorm(2, 4), shape=(2, 6, 6))
    per_axis = np.array([2, 3, 3, 3, 3, 2])
    a = np.outer(per_axis, per_axis)
    behind = 4 * a + 2 * 4 * a.sum()
    padded = np.pad(behind, 1)
    expect = 4 * np.array([[padded[i:i + 3, j:j + 3].sum() for j in range(6)] for i in range(6)])
    assert expect[0, 0] == 33168
    np.testing.assert_array_equal(traced(net, (2, 6, 6)), expect)
    np.testing.assert_array_equal(traced(net, (2, 6, 6), "ignore"), 4 * np.array(
        [[np.pad(4 * a, 1)[i:i + 3, j:j + 3].sum() for j in range(6)] for i in range(6)]))


def test_transformer_layer_norms_with_a_class_token():
    timm = pytest.importorskip("timm")
    net = timm.create_model("vit_tiny_patch16_224", img_size=32, depth=2, pretrained=False)
    counted = traced(net, (3, 32, 32))
    np.testing.assert_allclose(counted, autograd_pathways(net, (3, 32, 32), norm_stats="count"), rtol=1e-12)
    graph = edgewise.trace(net, (3, 32, 32), norm_stats="count")
    assert [op for _, op in graph.norm_layers] == ["layer_norm"] * 5  # norm_pre off; 2 per block; the final norm


def test_convnext_layer_norms():
    import torchvision

    net = torchvision.models.convnext_tiny()
    counted = traced(net, (3, 32, 32))
    np.testing.assert_allclose(counted, autograd_pathways(net, (3, 32, 32), norm_stats="count"), rtol=1e-12)


def test_batch_norm_with_running_statistics_is_not_a_normalisation_with_statistics():
    net = sandwich(nn.BatchNorm2d(4))
    graph = edgewise.trace(net, SHAPE, norm_stats="count")
    assert graph.norm_layers == ()
    np.testing.assert_array_equal(traced(net), traced(net, norm_stats="ignore"))


def test_statistics_over_positions_make_every_unit_global_but_channel_statistics_do_not():
    rf = edgewise.receptive_field(sandwich(nn.GroupNorm(2, 4)), SHAPE, norm_stats="count")
    assert rf["2"].global_via == "1:stats"
    assert rf["2"].size == (5, 5)  # the local field through the two 3×3 windows
    assert rf.norm_stats == "count" and rf.to_dict()["norm_stats"] == "count"
    assert edgewise.receptive_field(sandwich(nn.GroupNorm(2, 4)), SHAPE)["2"].global_via is None
    channel = edgewise.receptive_field(sandwich(*channels_last(nn.LayerNorm(4))), SHAPE, norm_stats="count")
    assert channel[channel.layers[-1].name].global_via is None


def test_results_say_what_was_done():
    net = nn.Sequential(*sandwich(nn.GroupNorm(2, 4)), nn.GroupNorm(1, 4))
    p = edgewise.pathways(net, SHAPE, norm_stats="count")
    assert p.norm_stats == "count" and p.to_dict()["norm_stats"] == "count"
    graph = edgewise.trace(net, SHAPE)
    assert graph.norm_stats == "ignore" and [n for n, _ in graph.norm_layers] == ["1", "3"]
    from edgewise._stats import describe

    assert describe(graph).startswith("the statistics of 2 normalisation layers (GroupNorm ×2) not counted")
    assert "counted as connections" in describe(edgewise.trace(net, SHAPE, norm_stats="count"))
    plain = edgewise.trace(nn.Sequential(nn.Conv2d(2, 2, 3)), SHAPE)
    assert describe(plain) == "no normalisation with statistics computed from the input"


def test_bad_values_and_statistics_edgewise_cannot_map_are_refused():
    with pytest.raises(EdgewiseError, match="norm_stats='counted'.*'ignore'.*'count'"):
        edgewise.pathways(sandwich(nn.GroupNorm(2, 4)), SHAPE, norm_stats="counted")
    graph = edgewise.trace(sandwich(nn.GroupNorm(2, 4)), SHAPE)
    with pytest.raises(EdgewiseError, match="traced with norm_stats='ignore'"):
        edgewise.pathways(graph, norm_stats="count")
    along_rows = sandwich(Fn(lambda x: F.normalize(x, dim=2)))
    with pytest.raises(EdgewiseError, match=r"statistics over axes \[2\].*norm_stats='ignore'"):
        edgewise.trace(along_rows, SHAPE, norm_stats="count")
    edgewise.trace(along_rows, SHAPE)  # ignored, it is a per-unit map


def test_cli_option(capsys, tmp_path):
    path = tmp_path / "net.py"
    path.write_text("import torch.nn as nn\n"
                    "def make():\n"
                    "    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.GroupNorm(2, 4), nn.Conv2d(4, 4, 3))\n")
    assert main(["paths", f"{path}:make", "--input", "1x8x8", "--norm-stats", "count", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["norm_stats"] == "count"
    assert main(["paths", f"{path}:make", "--input", "1x8x8"]) == 0
    assert "GroupNorm) not counted" in capsys.readouterr().out.replace("\n", " ")
    assert main(["rf", f"{path}:make", "--input", "1x8x8", "--norm-stats", "count"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "(GroupNorm) counted as connections" in text and "through 1:stats" in text


def test_remedies_answer_and_report_count_the_same_way(tmp_path):
    from edgewise.answer import answer
    from edgewise.remedies import compare

    net = sandwich(nn.GroupNorm(2, 4))
    counted = compare(net, SHAPE, ["circular"], norm_stats="count")
    assert counted.norm_stats == "count" and counted.to_dict()["norm_stats"] == "count"
    ignored = compare(net, SHAPE, ["circular"])
    assert counted.rows[0]["max_over_min"] != ignored.rows[0]["max_over_min"]
    a = answer(net, SHAPE, n_inits=2, perturb=False, norm_stats="count")
    assert "(normalisation: the statistics of 1 normalisation layer (GroupNorm) counted as connections" in a.text
    assert a.to_dict()["norm_stats"] == "count"


def test_commands_without_path_counts_do_not_take_the_option(capsys):
    with pytest.raises(SystemExit):
        main(["sensitivity", "4*conv3", "--input", "1x16", "--norm-stats", "count"])
    assert "unrecognized arguments: --norm-stats" in capsys.readouterr().err
