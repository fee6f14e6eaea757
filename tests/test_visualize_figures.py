"""Figures of feature visualizations: the grid (positions × seeds, receptive-field outlines) and the tiled row."""

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

import edgewise
from edgewise import EdgewiseError, nets
from edgewise import visualize as V
from edgewise.report._format import fmt_number
from edgewise.report.visualize import OUTLINE, plot_grid, plot_tiled, row_labels

SHAPE = (3, 16, 20)  # non-square: rows and columns must not be swapped
POSITIONS = ["center", "top_left", (2, 7)]
SEEDS = 2


@pytest.fixture(scope="module")
def model():
    return nets.from_spec("conv3/c4, maxpool2, conv3/c4", SHAPE, seed=0)


@pytest.fixture(scope="module")
def vis(model):
    return V.maximize(model, [V.unit("conv2", 1, p) for p in POSITIONS], SHAPE, seeds=SEEDS, steps=3)


@pytest.fixture(scope="module")
def boxes(model, vis):
    rf = edgewise.receptive_field(model, SHAPE)
    index = [tuple(int(v) for v in o.split(", (")[1].rstrip(")").split(", ")) for o in vis.objectives]
    return [rf.box("conv2", i) for i in index]


def image_axes(fig: Figure):
    return [ax for ax in fig.axes if ax.images]


def outlines(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle) and p.get_label() == "receptive field"]


def test_grid_has_one_image_per_position_and_seed_with_labels(vis):
    fig = plot_grid(vis, positions=POSITIONS)
    axes = image_axes(fig)
    assert len(axes) == len(POSITIONS) * SEEDS
    assert [ax.get_title() for ax in axes[:SEEDS]] == ["seed 0", "seed 1"]
    rows = [ax.get_ylabel() for ax in axes[::SEEDS]]
    assert rows[0].startswith("center\n(3, 4)")  # conv2's map is 8×10: its centre is (3, 4)
    assert rows[1].startswith("top left\n(0, 0)") and rows[2] == "(2, 7)"
    assert all(ax.get_ylabel() == "" for i, ax in enumerate(axes) if i % SEEDS)
    assert fig._suptitle.get_text() == "Preferred input of channel 1 of conv2 at each position"
    assert axes[0].images[0].get_array().shape == (16, 20, 3)  # H × W × RGB, not transposed
    assert all(not outlines(ax) for ax in axes)
    # the final objective under each image
    assert axes[SEEDS + 1].get_xlabel() == fmt_number(float(vis.final[1, 1]), digits=3)


def test_default_labels_are_the_resolved_positions_and_title_is_settable(vis):
    assert row_labels(vis) == ["(3, 4)", "(0, 0)", "(2, 7)"]
    fig = plot_grid(vis, title="My grid")
    assert fig._suptitle.get_text() == "My grid"
    with pytest.raises(EdgewiseError, match="2 labels for 3 objectives"):
        plot_grid(vis, positions=["center", "top"])


def test_receptive_field_outline_is_drawn_and_clipped(vis, boxes):
    fig = plot_grid(vis, positions=POSITIONS, rf_boxes=boxes)
    axes = image_axes(fig)
    for ax in axes:
        (rect,) = outlines(ax)
        assert rect.get_edgecolor()[:3] == pytest.approx(tuple(int(OUTLINE[i:i + 2], 16) / 255 for i in (1, 3, 5)))
        x0, y0 = rect.get_xy()
        assert x0 >= -0.5 and y0 >= -0.5
        assert x0 + rect.get_width() <= SHAPE[2] - 0.5 and y0 + rect.get_height() <= SHAPE[1] - 0.5
    # the corner unit's field hangs off the top-left: clipped there, so it starts at the image's edge
    corner = outlines(axes[SEEDS])[0]
    assert corner.get_xy()[0] < 0 and corner.get_xy()[1] < 0
    (lo_r, hi_r), (lo_c, hi_c) = boxes[1]
    assert lo_r < 0 and lo_c < 0
    assert corner.get_width() < hi_c - lo_c + 1  # narrower than the unclipped field
    assert "field" in axes[SEEDS].get_ylabel() and "% in" in axes[SEEDS].get_ylabel()
    assert "100 % in" in axes[0].get_ylabel()  # the centre unit's field lies inside this image
    # a row without a box gets none
    fig = plot_grid(vis, rf_boxes=[boxes[0], None, boxes[2]])
    assert [len(outlines(ax)) for ax in image_axes(fig)] == [1, 1, 0, 0, 1, 1]
    with pytest.raises(EdgewiseError, match="one per row"):
        plot_grid(vis, rf_boxes=boxes[:2])


def test_tiled_channel_is_a_row_of_seeds(model):
    vis = V.maximize(model, V.channel("conv2", 3), SHAPE, seeds=3, steps=2)
    fig = plot_tiled(vis)
    axes = image_axes(fig)
    assert len(axes) == 3 and [ax.get_title() for ax in axes] == ["seed 0", "seed 1", "seed 2"]
    assert axes[0].get_ylabel() == "conv2\nchannel 3"
    assert "channel 3 of conv2, tiled" in fig._suptitle.get_text()
    assert plot_tiled(vis, title="tiled")._suptitle.get_text() == "tiled"


def test_one_channel_images_are_grey_in_cividis():
    model = nets.from_spec("conv3/c2, conv3/c2", (1, 8, 8), seed=1)
    vis = V.maximize(model, [V.unit("conv2", 0, p) for p in ("center", "bottom_right")], (1, 8, 8), seeds=1, steps=2)
    axes = image_axes(plot_grid(vis))
    assert len(axes) == 2
    im = axes[0].images[0]
    assert im.get_cmap().name == "cividis" and im.get_array().shape == (8, 8) and im.get_clim() == (0.0, 1.0)


def test_refuses_what_it_cannot_draw(vis):
    flat = V.Visualization(images=np.zeros((1, 1, 3, 7)), values=np.zeros((0, 1, 1)), final=np.zeros((1, 1)),
                           objectives=["unit('a', 0, (3,))"], config={})
    with pytest.raises(EdgewiseError, match="2-D images"):
        plot_grid(flat)
    four = V.Visualization(images=np.zeros((1, 1, 4, 5, 5)), values=np.zeros((0, 1, 1)), final=np.zeros((1, 1)),
                           objectives=["unit('a', 0, (2, 2))"], config={})
    with pytest.raises(EdgewiseError, match="4 channels"):
        plot_grid(four)


def test_zoom_shows_a_window_around_each_field(vis, boxes):
    fig = plot_grid(vis, rf_boxes=boxes, zoom=1.5)
    axes = image_axes(fig)
    for p, box in enumerate(boxes):
        ax = axes[p * SEEDS]
        (x0, x1), (y1, y0) = ax.get_xlim(), ax.get_ylim()  # y runs downwards
        span_c = min(SHAPE[2], 1.5 * (box[1][1] - box[1][0] + 1))
        assert x1 - x0 == pytest.approx(span_c)
        assert -0.5 <= x0 and x1 <= SHAPE[2] - 0.5 and -0.5 <= y0 and y1 <= SHAPE[1] - 0.5
    # the corner unit's window sits in the image's corner
    assert axes[SEEDS].get_xlim()[0] == -0.5 and axes[SEEDS].get_ylim()[1] == -0.5
    assert "zoomed to 1.5×" in fig._supxlabel.get_text()
    whole = image_axes(plot_grid(vis, rf_boxes=boxes))[0]
    assert whole.get_xlim() == (-0.5, SHAPE[2] - 0.5)
    with pytest.raises(EdgewiseError, match="zoom must be at least 1"):
        plot_grid(vis, rf_boxes=boxes, zoom=0.5)
