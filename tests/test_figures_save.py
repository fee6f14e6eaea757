"""save_figure lays a figure out once and draws it once: the pixels matplotlib's own savefig draws, in less time."""

import functools
import io
import pickle

import matplotlib
import numpy as np
import pytest
from matplotlib.collections import LineCollection
from matplotlib.patches import Circle, FancyArrowPatch
from PIL import Image

import edgewise
from edgewise import nets
from edgewise.report import draw_diagram, plot_pathways, plot_receptive_field, save_figure
from edgewise.report.diagram import _UNIT, _rows, sketch
from edgewise.report.figures import STYLE, new_figure
from edgewise.report.remedies import plot_comparison


@functools.lru_cache(maxsize=None)
def _comparison(shape):
    return edgewise.remedies.compare("2*conv3", shape, remedies=["valid", "circular", "coordconv", "full", "partial"],
                                     progress=False, n_inits=3)


FIGURES = {
    "remedies 2-D": lambda: plot_comparison(_comparison((1, 12, 12))),
    "remedies 2-D, sensitivity": lambda: plot_comparison(_comparison((1, 12, 12)), sensitivity=True),
    "remedies 1-D": lambda: plot_comparison(_comparison((1, 24))),
    "paths 2-D": lambda: plot_pathways(edgewise.pathways("3*conv3", (1, 12, 16))),
    "receptive field": lambda: plot_receptive_field(edgewise.receptive_field("conv3/s2, maxpool2, conv3",
                                                                             (1, 20, 30))),
}


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


def _matplotlib_pngs(fig, saves: int = 2) -> list[np.ndarray]:
    """The pixels ``fig.savefig`` draws on successive saves of a copy of ``fig`` whose titles matplotlib places
    itself on every draw (a second save lays out again, from where the first left the axes)."""
    copy = pickle.loads(pickle.dumps(fig))
    for ax in copy.axes:
        ax._autotitlepos = None  # as set_title leaves it without y=
    pixels = []
    for _ in range(saves):
        buf = io.BytesIO()
        with matplotlib.rc_context(STYLE):
            copy.savefig(buf, format="png", dpi=150)
        pixels.append(_pixels(buf.getvalue()))
    return pixels


@pytest.mark.parametrize("name", list(FIGURES))
def test_save_figure_draws_the_pixels_savefig_draws(name, tmp_path):
    fig = FIGURES[name]()
    expected = _matplotlib_pngs(fig)
    engine = fig.get_layout_engine()
    for i, want in enumerate(expected):
        (png,) = save_figure(fig, tmp_path / f"{i}.png")
        assert np.array_equal(_pixels(png.read_bytes()), want), f"save {i + 1}"
        assert fig.get_layout_engine() is engine  # detached for the save only
        assert Image.open(png).mode == "RGB"  # opaque: no alpha channel to compress


def test_a_transparent_figure_keeps_its_alpha(tmp_path):
    with matplotlib.rc_context(STYLE):
        fig = new_figure(3, 2)
        fig.patch.set_alpha(0.0)
        fig.add_subplot().plot([0, 1], [1, 0])
    (png,) = save_figure(fig, tmp_path / "t.png")
    image = Image.open(png)
    assert image.mode == "RGBA" and image.getextrema()[3][0] == 0
    assert image.info["Software"] == "edgewise" and image.info["dpi"] == pytest.approx((150, 150), abs=0.1)


def test_an_unpickled_figure_is_saved_like_the_original(tmp_path):
    """The figure worker saves figures that crossed a pipe: their canvas is matplotlib's base class."""
    fig = FIGURES["remedies 2-D"]()
    copy = pickle.loads(pickle.dumps(fig))
    assert not hasattr(copy.canvas, "get_renderer")
    (a,) = save_figure(fig, tmp_path / "a.png")
    (b,) = save_figure(copy, tmp_path / "b.png")
    assert np.array_equal(_pixels(a.read_bytes()), _pixels(b.read_bytes()))


@pytest.mark.parametrize("spec, n, padding", [("4*conv3", 9, "same"), ("conv3, maxpool2, conv3/d2", 12, "reflect"),
                                              ("2*conv3", 9, "circular")])
def test_diagram_taps_end_at_the_rims_of_the_neurons_they_join(spec, n, padding):
    """The straight taps are one collection, each line cut back to the rims of its two neurons (as the patch per
    tap that matplotlib shrank did); the bowed ones stay patches: together, one line per tap."""
    fig, _, d = sketch(draw_diagram, spec, (1, n), padding=padding)
    ax = fig.axes[0]
    (lines,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    bows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    rows = _rows(edgewise.trace(nets.from_spec(spec, (1, n), padding=padding, width=1, activation=None), (1, n)))
    assert len(lines.get_segments()) + len(bows) == sum(len(taps) for row in rows[1:] for taps in row.taps)
    assert bool(bows) == (padding == "reflect")
    r = d.drawn["radius_pt"] / (_UNIT * 72)  # the neurons' radius in data units (1 unit = _UNIT inches both ways)
    centres = np.array([c.center for c in ax.patches if isinstance(c, Circle)])
    for segment in lines.get_segments():
        for end in segment:
            assert np.abs(np.hypot(*(centres - end).T) - r).min() < 1e-9


def test_the_png_is_the_whole_figure_whatever_the_rc_says(tmp_path):
    """The page shows each PNG at the size png_size gives: a user's ``savefig.bbox: tight`` must not crop it."""
    from edgewise.report.figures import png_size

    fig = FIGURES["paths 2-D"]()
    with matplotlib.rc_context({"savefig.bbox": "tight"}):
        (png,) = save_figure(fig, tmp_path / "p.png")
    assert Image.open(png).size == png_size(fig)


@pytest.mark.parametrize("inches", [22.0, 0.1 * 220, 21.999999999999996, 7.3])
def test_a_size_a_hair_under_a_whole_pixel_is_read_as_matplotlib_draws_it(inches, tmp_path):
    """A diagram's width comes from arithmetic (22 inches as 21.999999999999996): matplotlib draws it 3300 pixels
    wide, and reading those pixels 3299 to a row shears the picture (each row one pixel further along)."""
    from edgewise.report.figures import png_size

    with matplotlib.rc_context(STYLE):
        fig = new_figure(inches, 1.0)
        fig.add_axes((0, 0, 1, 1)).axvline(0.5, color="k", linewidth=3)  # one vertical line, straight if unsheared
    (png,) = save_figure(fig, tmp_path / "w.png")
    assert Image.open(png).size == png_size(fig)
    (want,) = _matplotlib_pngs(fig, saves=1)
    assert np.array_equal(_pixels(png.read_bytes()), want)
    dark = np.flatnonzero(_pixels(png.read_bytes())[:, :, 0].min(axis=0) < 128)  # columns dark in every row
    assert dark.size >= 3
