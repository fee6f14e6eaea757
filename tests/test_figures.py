"""Figures and neuron diagrams: titles, labels, colour bars, files, and diagram numbers that add up."""

from types import SimpleNamespace

import numpy as np
import pytest

import edgewise
from edgewise import EdgewiseError, nets
from edgewise.pathways import layer_counts
from edgewise.report import draw_diagram, plot_pathways, plot_receptive_field, png_data_uri, save_figure
from edgewise.report.diagram import _rows
from edgewise.report.figures import CMAPS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def pascal_net(n=9, padding="valid", spec="4*conv3"):
    return nets.from_spec(spec, (1, n), padding=padding, width=1)


def texts(fig):
    return " ".join([fig.get_suptitle()] + [ax.get_title() for ax in fig.axes])


# ------------------------------------------------------------------ pathways figures

def test_heatmap_has_title_labels_and_colorbar():
    result = edgewise.pathways(nets.from_spec("3*conv3", (1, 12, 16)), (1, 12, 16))
    fig = plot_pathways(result, padding="same")
    main, bar = fig.axes  # the map and its colour bar
    assert "Paths from each input position" in fig.get_suptitle() and "all units of conv3" in fig.get_suptitle()
    assert "3*conv3" in main.get_title() and "same padding" in main.get_title() and "corner" in main.get_title()
    assert "(px)" in main.get_xlabel() and "(px)" in main.get_ylabel()
    assert bar.get_ylabel() == "log10 paths"
    (image,) = main.get_images()
    assert image.get_cmap().name.split("_")[0] in CMAPS
    assert image.get_array().shape == (12, 16)  # rows × columns, not transposed
    np.testing.assert_allclose(image.get_array(), result.log10)


def test_curve_1d_log_axis_only_for_large_ranges():
    wide = edgewise.pathways(nets.from_spec("8*conv5", (1, 64), padding="valid"), (1, 64))
    ax = plot_pathways(wide).axes[0]
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "input position (sample)"
    assert "paths" in ax.get_ylabel()
    narrow = edgewise.pathways(pascal_net(padding="same"), (1, 9))
    ax = plot_pathways(narrow).axes[0]
    assert ax.get_yscale() == "linear"
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), narrow.counts)


def test_curve_of_counts_beyond_float64():
    log10 = np.array([400.0, 450.0, 500.0, 450.0, -np.inf])
    fake = SimpleNamespace(kind="pathways", log10=log10, model="deep", layer="out", to="all", summary={})
    ax = plot_pathways(fake).axes[0]
    assert ax.get_yscale() == "log" and "1e200" in ax.get_ylabel()
    assert np.isfinite(ax.get_lines()[0].get_ydata()).all()


def test_unreachable_positions_and_bad_colormap():
    result = edgewise.pathways(nets.from_spec("2*conv3", (1, 10, 10), padding="valid"), (1, 10, 10), to=(0, 0))
    fig = plot_pathways(result, cmap="cividis")
    assert any("no path" in t.get_text() for t in fig.axes[0].texts)
    with pytest.raises(EdgewiseError, match="colour-blind"):
        plot_pathways(result, cmap="jet")


def test_save_figure_png_and_svg(tmp_path):
    fig = plot_pathways(edgewise.pathways(pascal_net(), (1, 9)))
    paths = save_figure(fig, tmp_path / "sub" / "paths.svg")
    assert [p.name for p in paths] == ["paths.png", "paths.svg"]
    assert paths[0].read_bytes().startswith(PNG_MAGIC) and paths[0].stat().st_size > 1000
    assert "<svg" in paths[1].read_text()
    assert [p.name for p in save_figure(fig, tmp_path / "only")] == ["only.png"]


def test_png_data_uri_and_notebook_html():
    result = edgewise.pathways(pascal_net(), (1, 9))
    assert png_data_uri(result).startswith("data:image/png;base64,")
    assert png_data_uri(object()) is None
    assert '<img src="data:image/png;base64,' in result._repr_html_()


def test_receptive_field_figure():
    rf = edgewise.receptive_field("conv3/s2, maxpool2, conv3", (1, 20, 30))
    fig = plot_receptive_field(rf)
    assert "Receptive fields of conv3/s2" in fig.get_suptitle()
    top, bottom = fig.axes
    assert top.get_ylabel() == "receptive field size (px)" and "off image" in bottom.get_ylabel()
    assert [t.get_text() for t in bottom.get_xticklabels()] == ["input", "conv1", "maxpool1", "conv2"]
    assert png_data_uri(rf).startswith("data:image/png")


# ------------------------------------------------------------------ diagrams

def test_diagram_pascal_triangle(tmp_path):
    d = draw_diagram("4*conv3", (1, 9), padding="valid", out=tmp_path / "net.svg")
    assert d.rows[0]["counts"] == [1, 4, 10, 16, 19, 16, 10, 4, 1]
    assert [r["name"] for r in d.rows] == ["input", "conv1", "conv2", "conv3", "conv4"]
    assert [r["counts"] for r in d.rows[1:]] == [[1, 3, 6, 7, 6, 3, 1], [1, 2, 3, 2, 1], [1, 1, 1], [1]]
    svg = d.svg.read_text()
    assert d.svg == tmp_path / "net.svg" and ">19<" in svg and "4*conv3" in svg  # text kept as text
    assert d.png == tmp_path / "net.png" and d.png.read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize("padding", list(nets.PADDINGS))
@pytest.mark.parametrize("spec, n", [("3*conv3", 7), ("conv4, conv3/d2", 8), ("conv3/s2, maxpool2, conv2", 12)])
def test_diagram_edges_add_up_to_the_counts(spec, n, padding):
    """Every neuron's number equals the sum, over the edges drawn from it, of the upper neurons' numbers."""
    try:
        net = nets.from_spec(spec, (1, n), padding=padding, width=1, activation=None)
    except EdgewiseError:
        pytest.skip("too small for this padding")
    graph = edgewise.trace(net, (1, n))
    rows = _rows(graph)
    counts = layer_counts(graph, to="all")
    for below, row in zip(rows, rows[1:]):
        got = np.zeros(below.n, dtype=object)
        for o, taps in enumerate(row.taps):
            for p, i, k in taps:
                if i is not None:
                    got[i] += k * counts[row.name][o]
                else:
                    assert not 0 <= p < below.n  # only out-of-row positions read a constant
        assert got.tolist() == counts[below.name].tolist(), (below.name, padding)


def test_diagram_mirrored_taps_and_centre_target(tmp_path):
    d = draw_diagram("conv3, maxpool2, conv3/d2", (1, 12), padding="replicate", to="center", out=tmp_path / "m.png")
    assert d.svg.exists() and d.png.exists() and d.svg.suffix == ".svg"
    assert d.rows[-1]["counts"] == [0, 0, 1, 0, 0, 0]
    assert d.rows[0]["counts"][0] == 3  # two replicate taps read the first input, plus one ordinary tap


def test_diagram_circular_wraps_to_labelled_copies(tmp_path):
    d = draw_diagram("2*conv3", (1, 9), padding="circular", out=tmp_path / "c.svg")
    assert d.rows[0]["counts"] == [9] * 9
    svg = d.svg.read_text()
    assert ">=8<" in svg and ">=0<" in svg  # the padded copies say which neuron they repeat


@pytest.mark.parametrize("spec, shape, message", [
    ("4*conv3", (1, 9, 9), "1-D"),
    ("conv3", (1, 41), "at most 40"),
    ("13*conv1", (1, 9), "at most 12 layers"),
    ("conv3, fc4", (1, 9), "fc layers"),
    ("res(conv3, conv3)", (1, 9), "chain"),
])
def test_diagram_refuses_what_it_cannot_draw(tmp_path, spec, shape, message):
    with pytest.raises(EdgewiseError, match=message):
        draw_diagram(spec, shape, padding="same", out=tmp_path / "x.svg")
    assert not list(tmp_path.iterdir())


def test_receptive_field_legend_of_a_1d_model():
    from edgewise import receptive_field
    from edgewise.report.figures import plot_receptive_field

    fig = plot_receptive_field(receptive_field("conv64/s4, conv64/s4", (1, 256)))
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels == ["receptive field", "input size (256 samples)"]
