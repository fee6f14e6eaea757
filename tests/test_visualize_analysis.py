"""Position dependence of preferred inputs: crops, similarity, the index, cross-activation and the figure."""

import json
import math
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn as nn

from edgewise import EdgewiseError, nets
from edgewise.geometry import receptive_field
from edgewise.report.figures import CMAPS
from edgewise.report.position import plot_index_vs_rf, plot_similarity_matrix
from edgewise.visualize import Visualization, analysis as A, crops as C

SHAPE = (1, 12, 16)  # non-square on purpose


# ------------------------------------------------------------------ rf_crop

def test_rf_crop_inside_box_copies_pixels():
    img = np.arange(2 * 5 * 7, dtype=float).reshape(2, 5, 7)
    crop, mask = C.rf_crop(img, ((1.0, 3.0), (2.0, 4.0)), (5, 7))
    assert crop.shape == (2, 3, 3) and mask.shape == (3, 3) and mask.all()
    np.testing.assert_array_equal(crop, img[:, 1:4, 2:5])


def test_rf_crop_over_top_left_corner_masks_off_image_pixels():
    img = np.arange(2 * 5 * 7, dtype=float).reshape(2, 5, 7)
    crop, mask = C.rf_crop(img, ((-2.0, 1.0), (-1.0, 2.0)), (5, 7))
    assert crop.shape == (2, 4, 4)
    expected = np.zeros((4, 4), bool)
    expected[2:, 1:] = True  # canvas pixel i is input pixel lo + i
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(crop[:, 2:, 1:], img[:, 0:2, 0:3])
    assert np.isnan(crop[:, ~mask]).all()


def test_rf_crop_over_bottom_right_and_off_image():
    img = np.arange(5 * 7, dtype=float).reshape(5, 7)  # no channel axis
    crop, mask = C.rf_crop(img, ((3, 6), (5, 8)), fill=-1.0)
    assert crop.shape == mask.shape == (4, 4)
    np.testing.assert_array_equal(crop[:2, :2], img[3:5, 5:7])
    assert mask[:2, :2].all() and mask.sum() == 4 and (crop[~mask] == -1).all()
    crop, mask = C.rf_crop(img, ((-9, -6), (0, 3)))
    assert not mask.any() and np.isnan(crop).all()


def test_rf_crop_rejects_bad_boxes():
    img = np.zeros((1, 5, 7))
    with pytest.raises(EdgewiseError, match="whole-pixel"):
        C.rf_crop(img, ((0.5, 2.5), (0, 2)))
    with pytest.raises(EdgewiseError, match="does not match"):
        C.rf_crop(img, ((0, 2), (0, 2)), (7, 5))
    with pytest.raises(EdgewiseError, match="lo ≤ hi"):
        C.rf_crop(img, ((3, 2), (0, 2)))


def test_shift_moves_content_and_fills():
    img = np.arange(12, dtype=float).reshape(1, 3, 4)
    out = C.shift(img, (1, -1))
    np.testing.assert_array_equal(out[0, 1:, :3], img[0, :2, 1:])
    assert (out[0, 0] == 0.5).all() and (out[0, :, 3] == 0.5).all()
    assert (C.shift(img, (5, 0), fill="mean") == img.mean()).all()
    with pytest.raises(EdgewiseError, match="fill"):
        C.shift(img, (0, 0), fill="black")


# ------------------------------------------------------------------ similarity

def test_similarity_identical_symmetric_and_ignores_masked_pixels():
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 5, 5)), rng.random((2, 5, 5))
    m = np.ones((5, 5), bool)
    assert C.similarity(a, m, a, m) == pytest.approx(1.0)
    assert C.similarity(a, m, 1 - a, m) == pytest.approx(-1.0)
    assert C.similarity(a, m, b, m) == pytest.approx(C.similarity(b, m, a, m))
    mb = m.copy()
    mb[:2] = False  # b's top rows are off its image: whatever they hold must not count
    b2 = b.copy()
    b2[:, :2] = 1e6
    b3 = b.copy()
    b3[:, :2] = np.nan
    ref = C.similarity(a, m, b, mb)
    assert C.similarity(a, m, b2, mb) == pytest.approx(ref) and C.similarity(a, m, b3, mb) == pytest.approx(ref)
    assert ref == pytest.approx(np.corrcoef(a[:, 2:].ravel(), b[:, 2:].ravel())[0, 1])


def test_similarity_nan_when_too_few_pixels_or_constant():
    a = np.random.default_rng(1).random((1, 4, 4))
    few = np.zeros((4, 4), bool)
    few[0, : C.MIN_PIXELS - 1] = True
    assert math.isnan(C.similarity(a, few, a, few))
    few[1, 0] = True
    assert C.similarity(a, few, a, few) == pytest.approx(1.0)
    full = np.ones((4, 4), bool)
    assert math.isnan(C.similarity(a, full, np.full_like(a, 0.3), full))
    flat = 0.98 + 1e-4 * a  # a saturated patch: its "pattern" is noise
    assert math.isnan(C.similarity(flat, full, flat, full))
    assert C.similarity(flat, full, flat, full, min_std=0) == pytest.approx(1)
    with pytest.raises(EdgewiseError, match="aligned"):
        C.similarity(a, few, a[:, :3], few[:3])


def test_pairwise_normalises_out_seed_noise():
    """Noisy copies of one pattern: raw similarity falls with noise, the normalised one stays ≈ 1; an
    opposite pattern gives ≈ −1 and an unrelated one ≈ 0."""
    rng = np.random.default_rng(2)
    pat, other = rng.standard_normal((1, 9, 9)), rng.standard_normal((1, 9, 9))
    bases = [pat, pat, -pat, other]
    crops = np.stack([[b + rng.standard_normal(b.shape) for _ in range(6)] for b in bases])
    masks = np.ones((4, 9, 9), bool)
    masks[1, :4] = False  # a field hanging off the top: fewer, but aligned, pixels
    sim, norm = C.pairwise(crops, masks)
    assert 0.3 < sim[0, 0] < 0.7 and 0.3 < sim[0, 1] < 0.7
    np.testing.assert_allclose(np.diag(norm), 1.0)
    assert norm[0, 1] == pytest.approx(1.0, abs=0.15) and norm[0, 2] == pytest.approx(-1.0, abs=0.15)
    assert abs(norm[0, 3]) < 0.25
    np.testing.assert_allclose(sim, sim.T)
    with pytest.raises(EdgewiseError, match="2 seeds"):
        C.pairwise(crops[:, :1], masks)


# ------------------------------------------------------------------ position_dependence

@pytest.fixture(scope="module")
def small():
    net = nets.from_spec("conv3/c4, maxpool2, conv3/c4", SHAPE, seed=0)
    return net, A.position_dependence(net, "conv2", 1, SHAPE, seeds=2, steps=6)


def test_position_dependence_shapes_positions_and_boxes(small, tmp_path):
    net, pd = small
    rf = receptive_field(net, SHAPE)
    assert pd.labels == list(A.POSITIONS) and pd.reference == 0
    assert pd.positions == [(2, 3), (0, 3), (2, 0), (0, 0), (5, 7)]  # on the real 6×8 map
    assert pd.boxes == [rf.box("conv2", p) for p in pd.positions]
    np.testing.assert_allclose(pd.fraction_inside, [rf.fraction_inside("conv2")[p] for p in pd.positions])
    assert pd.rf_size == (8, 8) and pd.images.shape == (5, 2, 1, 12, 16) and pd.final.shape == (5, 2)
    for name in ("similarity", "normalised", "cross_activation"):
        assert getattr(pd, name).shape == (5, 5)
    assert np.isfinite(pd.similarity).all() and math.isfinite(pd.index) and math.isfinite(pd.activation_index)
    crops, masks = pd.crops()
    assert crops.shape == (5, 2, 1, 8, 8) and masks.shape == (5, 8, 8) and masks[0].all() and not masks[3].all()
    names = {p.name for p in pd.save(tmp_path)}
    assert "position_dependence.json" in names and "position_dependence.images.npy" in names
    assert json.loads(pd.to_json())["positions"][4] == [5, 7]


def test_cross_activation_of_a_position_with_itself_is_one(small):
    _, pd = small
    diag = np.diag(pd.cross_activation)
    np.testing.assert_allclose(diag[np.isfinite(diag)], 1.0, rtol=1e-6)
    assert np.isfinite(diag).any()


def test_position_dependence_rejects_bad_input(small):
    net, _ = small
    with pytest.raises(EdgewiseError, match="at least 2"):
        A.position_dependence(net, "conv2", 0, SHAPE, seeds=1, steps=1)
    with pytest.raises(EdgewiseError, match="channel 9"):
        A.position_dependence(net, "conv2", 9, SHAPE, seeds=2, steps=1)
    with pytest.raises(EdgewiseError, match="outside"):
        A.position_dependence(net, "conv2", 0, SHAPE, positions=["center", (6, 0)], seeds=2, steps=1)
    with pytest.raises(EdgewiseError, match="fill"):
        A.position_dependence(net, "conv2", 0, SHAPE, fill="white", seeds=2, steps=1)
    with pytest.raises(EdgewiseError, match="no layer"):
        A.position_dependence(net, "conv9", 0, SHAPE, seeds=2, steps=1)


def linear_unit(shape=(1, 10, 13)):
    """One 5×5 linear filter with hand-set weights: every unit's preferred input is 1 where w > 0 and 0 where
    w < 0, on whatever part of its field lies on the image, so the same pattern is preferred everywhere."""
    conv = nn.Conv2d(1, 1, 5, padding=2, bias=False)
    signs = np.where(np.random.default_rng(3).random((5, 5)) < 0.5, -1.0, 1.0)
    signs[0, 0], signs[4, 4] = 1.0, -1.0
    w = signs * np.linspace(0.5, 1.0, 25).reshape(5, 5)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(w, dtype=torch.float32)[None, None])
    return nn.Sequential(OrderedDict(conv=conv)), w


def test_linear_unit_prefers_the_same_pattern_everywhere():
    shape = (1, 10, 13)
    net, w = linear_unit(shape)
    pd = A.position_dependence(net, "conv", 0, shape, positions=("center", "top", "left", "top_left",
                                                                 "bottom_right", (3, 9)), seeds=3, steps=40)
    assert pd.positions[0] == (4, 6) and pd.positions[4] == (9, 12)
    crops, masks = pd.crops()
    for p in range(len(pd.positions)):  # the analytic optimum, pixel for pixel, in every aligned crop
        on = masks[p]
        assert (crops[p, :, 0][:, on & (w > 0)] > 0.95).all() and (crops[p, :, 0][:, on & (w < 0)] < 0.05).all()
    joint = np.einsum("pij,qij->pq", masks.astype(int), masks.astype(int))
    np.testing.assert_array_equal(np.isnan(pd.normalised), joint < C.MIN_PIXELS)  # top vs bottom_right: 3 px
    np.testing.assert_allclose(pd.normalised[joint >= C.MIN_PIXELS], 1.0, atol=0.01)
    assert abs(pd.index) < 0.01 and abs(pd.activation_index) < 0.01
    # the centre unit shown the top-left corner's image: the part of its field the corner could not see is grey
    offset = [a[0] - b[0] for a, b in zip(pd.boxes[0], pd.boxes[3])]
    moved = np.stack([C.shift(img, offset) for img in pd.images[3]])  # every seed of the corner
    ratio = (w * moved[:, 0, 2:7, 4:9]).sum((1, 2)).mean() / (w * pd.images[0, :, 0, 2:7, 4:9]).sum((1, 2)).mean()
    assert pd.cross_activation[0, 3] == pytest.approx(ratio, rel=1e-4) and ratio < 0.9


def test_index_vs_rf_and_tiled():
    net = nets.from_spec("conv3/c3, maxpool2, conv3/c3", SHAPE, seed=1)
    res = A.index_vs_rf(net, SHAPE, layers=None, channels=(0, 2, 5), positions=("top_left",), seeds=2, steps=3)
    assert res.layers == ["conv1", "conv2"] and res.channels == [[0, 2], [0, 2]]
    assert res.index.shape == (2, 2) and res.positions == ["center", "top_left"]
    np.testing.assert_allclose(res.rf_fraction, [np.mean([3 / 12, 3 / 16]), np.mean([8 / 12, 8 / 16])])
    assert len(res.results) == 4 and res.to_dict()["layers"] == ["conv1", "conv2"]
    vis = A.tiled(net, "conv2", [0, 1], SHAPE, seeds=2, steps=2)
    assert isinstance(vis, Visualization) and vis.images.shape == (2, 2, 1, 12, 16)


# ------------------------------------------------------------------ figures

def fake_index_result():
    return A.IndexVsRF(model="net", input_shape=(1, 32, 32), layers=["conv1", "conv2", "conv3"],
                       channels=[[0, 1], [0, 1], [0, 1]], positions=["center", "top_left"],
                       rf_size=np.array([[3, 3], [10, 10], [32, 32]]), rf_fraction=np.array([3, 10, 32]) / 32,
                       index=np.array([[0.0, 0.05], [0.2, np.nan], [0.6, 0.8]]),
                       activation_index=np.zeros((3, 2)), mean_index=np.array([0.025, 0.2, 0.7]), trend=1.0,
                       seconds=np.ones(3), config={"seeds": 3, "steps": 64, "param": "pixels", "jitter": 0})


def test_index_vs_rf_figure_has_title_labels_and_legend():
    fig = plot_index_vs_rf(fake_index_result())
    (ax,) = fig.axes
    assert "receptive-field size" in fig.get_suptitle() and "net" in ax.get_title()
    assert "receptive-field size / image size" in ax.get_xlabel() and "(ratio" in ax.get_xlabel()
    assert "position-dependence index" in ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["channel 0", "channel 1", "layer mean"]
    assert {t.get_text() for t in ax.texts} >= {"conv1 (3 px)", "conv2 (10 px)", "conv3 (32 px)"}
    mean_line = [l for l in ax.get_lines() if l.get_label() == "layer mean"][0]
    np.testing.assert_allclose(mean_line.get_ydata(), [0.025, 0.2, 0.7])


def test_similarity_matrix_figure(small):
    _, pd = small
    fig = plot_similarity_matrix(pd)
    left, right = [ax for ax in fig.axes if ax.get_images()]
    assert "conv2 channel 1" in fig.get_suptitle()
    assert left.get_xlabel() and left.get_ylabel() == "unit position p" and right.get_title()
    assert {ax.get_ylabel() for ax in fig.axes if not ax.get_images()} == {
        "similarity / noise ceiling", "response / own-image response"}
    assert left.get_images()[0].get_cmap().name.split("_")[0] in CMAPS
    with pytest.raises(EdgewiseError, match="cmap"):
        plot_similarity_matrix(pd, cmap="jet")
