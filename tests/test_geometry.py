"""Receptive-field geometry against hand formulas, published numbers and probing."""

from fractions import Fraction

import pytest
import torch.nn as nn
import torchvision
from hypothesis import given, settings, strategies as st

from edgewise import EdgewiseError, geometry, nets, receptive_field, trace
from edgewise.geometry import AxisField, _inside, _share_inside
from edgewise.testing.probe import probe_box
from test_geometry_congruence import _random_net


def test_stacked_convs_hand_formulas():
    rf = receptive_field(nets.from_spec("conv3/s2, conv3/s2, conv5/d2", (1, 65, 65), padding="valid"), (1, 65, 65))
    assert rf["conv1"].size == (3, 3) and rf["conv1"].jump == (2, 2) and rf["conv1"].start == (1, 1)
    assert rf["conv2"].size == (7, 7) and rf["conv2"].jump == (4, 4) and rf["conv2"].start == (3, 3)
    # dilation 2, 5 taps: extent 9 positions of jump 4 → +32
    assert rf["conv3"].size == (39, 39) and rf["conv3"].start == (19, 19)


def test_same_padding_centres_and_even_kernels():
    rf = receptive_field(nets.from_spec("conv3, conv2", (1, 12), padding="same"), (1, 12))
    assert rf["conv1"].start == (0,)
    assert rf["conv2"].start == (0.5,) and rf["conv2"].size == (4,)  # even kernel: centre between pixels
    full = receptive_field(nets.from_spec("conv3", (1, 12), padding="full"), (1, 12))
    assert full["conv1"].start == (-1,)


def test_vgg16_published_receptive_fields():
    # Araujo et al., "Computing Receptive Fields of CNNs" (Distill 2019): VGG-16 conv5_3 196, pool5 212
    rf = receptive_field(torchvision.models.vgg16(), (3, 224, 224))
    assert rf["features.29"].size == (196, 196) and rf["features.30"].size == (212, 212)
    assert rf["features.30"].jump == (32, 32)


def test_resnet50_advice():
    rf = receptive_field(torchvision.models.resnet50(), (3, 224, 224))
    assert rf["layer4.2.relu#2"].size == (427, 427)
    uneven = {name for name, *_ in rf.advice.uneven}
    assert {"conv1", "maxpool", "layer2.0.conv2", "layer2.0.downsample.0"} <= uneven
    assert rf.advice.even_input_sizes[0] == (225, 225)
    assert any("dropped" in s for s in rf.advice.sentences())  # 1x1 stride-2 shortcut skips a row
    even = receptive_field(torchvision.models.resnet50(), (3, 225, 225))
    assert even.advice.uneven == [] and even.advice.center_offset == (0, 0)
    assert not rf.misalignments


def test_stride_two_on_even_input_is_uneven():
    odd = receptive_field(nets.from_spec("conv3/s2", (1, 9, 9)), (1, 9, 9))
    even = receptive_field(nets.from_spec("conv3/s2", (1, 8, 8)), (1, 8, 8))
    assert odd.advice.uneven == [] and odd.advice.center_offset == (0, 0)
    assert [u[:3] for u in even.advice.uneven] == [("conv1", 0, 1), ("conv1", 1, 1)]
    assert even.advice.center_offset == (-0.5, -0.5)
    assert (9, 9) in even.advice.even_input_sizes and (7, 7) in even.advice.even_input_sizes


def test_boxes_and_fraction_inside_non_square():
    rf = receptive_field(nets.from_spec("3*conv3", (1, 8, 6)), (1, 8, 6))
    assert rf.box("conv3", (0, 5)) == ((-3.0, 3.0), (2.0, 8.0))
    assert rf.clipped_box("conv3", (0, 5)) == ((0.0, 3.0), (2.0, 5.0))
    frac = rf.fraction_inside("conv3")
    assert frac.shape == (8, 6)
    assert frac[0, 0] == pytest.approx((4 / 7) ** 2) and frac[4, 3] == pytest.approx(6 / 7)
    assert rf["conv3"].fraction_off == pytest.approx(1 - (2 / 8) * (0 / 6))
    with pytest.raises(EdgewiseError, match=r"outside layer 'conv3', whose grid is \(8, 6\)"):
        rf.box("conv3", (8, 0))


def test_branches_report_misalignment():
    class TwoBranches(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv1d(1, 1, 3, padding=1)
            self.b = nn.Sequential(nn.ZeroPad1d((1, 0)), nn.Conv1d(1, 1, 2))

        def forward(self, x):
            return self.a(x) + self.b(x)

    rf = receptive_field(TwoBranches(), (1, 10))
    add = rf["add"]
    assert add.misaligned and rf.misalignments and "add" in rf.misalignments[0]
    assert add.size == (3,) and add.start == (0,)


def test_global_layers_cover_everything():
    rf = receptive_field(nets.from_spec("2*conv3, gap, fc3", (1, 10, 10)), (1, 10, 10))
    assert rf["gap1"].size == (14, 14) and not rf["fc1"].spatial and rf["fc1"].jump is None
    d = rf.to_dict()
    assert {"name", "size", "jump", "start"} <= set(d["layers"][0]) and "even_input_sizes" in d["advice"]


def test_json_numbers_are_plain():
    rf = receptive_field(nets.from_spec("conv2", (1, 6)), (1, 6))
    assert isinstance(rf["conv1"].start[0], float) and isinstance(rf["conv1"].size[0], int)
    assert rf["conv1"].axes[0].start == Fraction(1, 2)


SPECS = st.lists(st.sampled_from(["conv3", "conv2", "conv3/s2", "conv5/s3", "maxpool2", "avgpool3/s2", "conv1/s2"]),
                 min_size=1, max_size=4)


@settings(derandomize=True, max_examples=40, deadline=None)
@given(layers=SPECS, padding=st.sampled_from(["valid", "same", "full"]), n=st.integers(9, 14),
       data=st.data())
def test_clipped_box_matches_probe(layers, padding, n, data):
    """Without dilation and with constant padding, the box clipped to the image is exactly
    the span of input positions that reach the unit."""
    try:
        net = nets.from_spec(", ".join(layers), (1, n, n - 2), padding=padding, width=1)
    except Exception:
        return  # input too small for this stack
    graph = trace(net, (1, n, n - 2))
    rf = receptive_field(graph)
    name = graph.output
    grid = graph[name].spatial
    pos = tuple(data.draw(st.integers(0, g - 1)) for g in grid)
    assert probe_box(graph, name, pos) == tuple((int(lo), int(hi)) for lo, hi in rf.clipped_box(name, pos))


# ------------------------------------------------------------------ the exact shortcuts against the float code

FRACTIONS = st.builds(Fraction, st.integers(-400, 400), st.sampled_from([1, 2, 4, 8, 3, 6, 512, 1024]))


@settings(derandomize=True, max_examples=300, deadline=None)
@given(size=FRACTIONS, jump=FRACTIONS, start=FRACTIONS, n=st.integers(1, 40), n_input=st.integers(1, 60))
def test_share_inside_counts_what_the_float_bounds_give(size, jump, start, n, n_input):
    a = AxisField(abs(size) + 1, abs(jump), start, n)
    assert _share_inside(a, n_input) == float(_inside(a, n_input)[0].mean())


def _same_as_float_code(graph) -> None:
    """receptive_field equals itself with the float code everywhere (no closed-form share inside, no exact merge)."""
    fast = receptive_field(graph)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(geometry, "_share_inside", lambda a, n: float(_inside(a, n)[0].mean()))
        m.setattr(geometry, "_merge_aligned", lambda ops, n: None)
        slow = receptive_field(graph)
    assert repr(fast.to_dict()) == repr(slow.to_dict())
    assert repr([l.axes for l in fast.layers]) == repr([l.axes for l in slow.layers])


@pytest.mark.parametrize("model, shape", [
    (lambda: torchvision.models.resnet18(), (3, 64, 80)),
    (lambda: torchvision.models.googlenet(aux_logits=False, init_weights=False), (3, 64, 64)),
    (lambda: torchvision.models.densenet121(), (3, 64, 64)),
    (lambda: nets.from_spec("conv3/s2, conv2, conv3/d2, maxpool3/s2, conv5", (1, 37, 30)), (1, 37, 30)),
], ids=["resnet18", "googlenet", "densenet121", "spec"])
def test_shortcuts_give_the_float_code_results(model, shape):
    _same_as_float_code(trace(model(), shape))


@settings(derandomize=True, max_examples=60, deadline=None)
@given(seed=st.integers(0, 10 ** 6), d=st.sampled_from([1, 2]))
def test_shortcuts_give_the_float_code_results_on_random_nets(seed, d):
    made = _random_net(seed, d)
    if made is not None:
        _same_as_float_code(trace(*made))


def test_advice_sentences_count_what_is_unread():
    """One unread padded row and column is "the last padded row and column", three are "the last 3 padded
    positions"; a dropped input row likewise (each number from the advice's own record)."""
    two = receptive_field("conv3/s2, conv3/s2", (1, 32, 32))
    assert {u for *_, u, _ in two.advice.uneven} == {1}
    assert two.advice.sentences()[:2] == [
        f"conv{i}: the last padded row and column are never read, so the padding is uneven (more before than after)."
        for i in (1, 2)]
    one = receptive_field("conv64/s4, conv64/s4", (1, 256))
    assert {u for *_, u, _ in one.advice.uneven} == {3}
    assert one.advice.sentences()[0] == ("conv1: the last 3 padded positions are never read, so the padding is "
                                         "uneven (more before than after).")
    rf = receptive_field(torchvision.models.resnet50(), (3, 224, 224))
    dropped = [s for s in rf.advice.sentences() if "dropped" in s]
    assert dropped and all(s.endswith("the last input row and column are never read (dropped).") for s in dropped)
