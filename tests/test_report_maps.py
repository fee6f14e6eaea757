"""The report's map figures read at a glance: each remedy map shows its own variation, unread positions are
marked, sensitivity curves are normalised with an error band, noisy estimates are not drawn as evidence,
padding layers are not layers, titles are whole, and captions name the panels actually drawn."""

import html
import math
from dataclasses import replace

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

import edgewise
from edgewise import nets
from edgewise.remedies.compare import Comparison
from edgewise.report import sections
from edgewise.report.figures import new_figure, panel_text, panels, plot_pathways, plot_receptive_field
from edgewise.report.remedies import OWN_SCALE, plot_comparison
from edgewise.report.sensitivity import MIN_SIGN_CORRELATION, plot_perturbation, plot_sensitivity
from edgewise.sensitivity import init_sensitivity, perturbation
from edgewise.testing.figure_lint import figure_problems, layout_problems


def _comparison(maps: dict, shape) -> Comparison:
    """A comparison of hand-made log10 maps; each row's centre/corner ratio read off its map."""
    key = "center_corner_ratio" if len(shape) == 3 else "center_edge_ratio"
    rows = []
    for name, m in maps.items():
        centre = m[tuple((n - 1) // 2 for n in m.shape)]
        rows.append({"name": name, key: 10.0 ** (centre - m[(0,) * m.ndim])})
    return Comparison("toy", shape, rows, maps)


def _bowl(n: int, decades: float) -> np.ndarray:
    """A log10 map, 0 at the centre (``n`` odd) and ``decades`` lower at the corners."""
    r = np.hypot(*np.meshgrid(np.linspace(-1, 1, n), np.linspace(-1, 1, n))) / math.sqrt(2)
    return -decades * r ** 2


def _map_axes(fig):
    return [ax for ax in fig.axes if ax.get_images()]


@pytest.fixture(scope="module")
def toy():
    """original 26× (1.415 decades), valid 10^6.7, a flat map, and one with unread positions."""
    holes = _bowl(17, 0.5)
    holes[::3, :] = -np.inf
    maps = {"original": _bowl(17, math.log10(26)), "valid": _bowl(17, 6.7), "circular": np.zeros((17, 17)),
            "nonoverlapping": holes}
    return plot_comparison(_comparison(maps, (1, 17, 17)))


def test_each_map_shows_its_own_variation(toy):
    axes = {ax.get_title().split(":")[0].split(" ·")[0].split("\n")[0]: ax for ax in _map_axes(toy)}
    low, high = axes["original"].get_images()[0].get_clim()
    assert high == 0 and low == pytest.approx(-math.log10(26))  # the original's 26× spans the whole colour bar
    assert "own scale" in axes["valid"].get_title()  # 6.7 decades > OWN_SCALE × 1.4: a scale of its own
    assert axes["valid"].get_images()[0].get_clim()[0] == pytest.approx(-6.7)
    assert axes["circular"].get_images()[0].get_clim() == (low, high)  # the rest share the original's
    bars = [ax for ax in toy.axes if getattr(ax, "_colorbar", None) is not None]
    assert len(bars) == 2 and any("own scale" in b.get_ylabel() or "own scale" in b.get_xlabel() for b in bars)
    assert "divided by its own maximum" in toy.get_supxlabel()
    assert OWN_SCALE * math.log10(26) < 6.7


def test_zero_path_positions_are_hatched(toy):
    (ax,) = [a for a in _map_axes(toy) if a.get_title().startswith("nonoverlapping")]
    assert "102 px no path" in ax.get_title()  # rows 0, 3, …, 15: 6 rows of 17
    hatched = [c for c in ax.collections if c.get_hatch() or any(getattr(c, "hatches", None) or [])]  # contourf
    assert hatched and "Hatched: positions with no path" in toy.get_supxlabel()


def test_one_d_curves_and_their_unread_positions():
    line = np.concatenate([np.linspace(-0.5, 0, 20), np.linspace(0, -0.5, 20)])
    unread = line.copy()
    unread[-7:] = -np.inf
    fig = plot_comparison(_comparison({"original": line, "replicate": line * 4, "nonoverlapping": unread}, (1, 40)))
    by_name = {ax.get_title().split(":")[0]: ax for ax in fig.axes if ax.get_visible()}
    assert by_name["original"].get_ylim()[0] < -0.5 < 0 < by_name["original"].get_ylim()[1] < 0.1
    assert "own scale" in by_name["replicate"].get_title() and by_name["replicate"].get_ylim()[0] < -2
    assert "7 samples no path" in by_name["nonoverlapping"].get_title()
    assert any(p.get_hatch() for p in by_name["nonoverlapping"].patches)
    assert figure_problems(fig) == []


def test_rows_keep_apart_and_lint_passes(toy):
    assert figure_problems(toy) == []
    toy.draw_without_rendering()
    r = toy.canvas.get_renderer()
    above = {id(a): a for a in _map_axes(toy)}
    for ax in above.values():  # a title and the row above it: at least 10 pt of air
        t = ax.title.get_window_extent(r)
        for other in above.values():
            b = other.xaxis.label.get_window_extent(r) if other.get_xlabel() else other.get_tightbbox(r)
            if b.y0 > t.y1 and b.x0 < t.x1 and b.x1 > t.x0:
                assert (b.y0 - t.y1) * 72 / toy.dpi > 10


def test_real_comparison_is_readable():
    fig = plot_comparison(edgewise.remedies.compare("2*conv3", (1, 12, 12), remedies=["valid", "circular"],
                                                    progress=False))
    assert figure_problems(fig) == []


# ------------------------------------------------------------------ sensitivity


@pytest.fixture(scope="module")
def one_d():
    shape = (1, 32)
    net = nets.from_spec("3*conv5", shape)
    return init_sensitivity(net, shape, n_inits=6), edgewise.pathways(net, shape)


def test_one_d_sensitivity_is_normalised_with_a_band(one_d):
    result, paths = one_d
    fig = plot_sensitivity(result, paths=paths)
    left, right = fig.axes
    curve, path_curve = left.get_lines()[:2]
    assert np.mean(curve.get_ydata()) == pytest.approx(1.0)  # divided by its mean
    assert np.mean(path_curve.get_ydata()) == pytest.approx(1.0)
    assert "mean" in left.get_ylabel() and "mean" in right.get_ylabel()
    (band,) = [c for c in left.collections if isinstance(c, PolyCollection)]
    top = band.get_paths()[0].vertices[:, 1].max()
    assert top == pytest.approx(np.max((result.map + result.stderr) / result.map.mean()))
    assert [c for c in right.collections if isinstance(c, PolyCollection)]  # the profile has its band too
    text = panel_text(fig)
    assert text.startswith("(left) ") and "(right) " in text and "standard error" in text
    for p, ax in zip(panels(fig), (left, right)):
        assert p.log == (ax.get_yscale() == "log")
    assert figure_problems(fig) == []


def test_two_d_sensitivity_caption_names_a_log_colour_map():
    shape = (1, 12, 12)
    result = init_sensitivity(nets.from_spec("2*conv3", shape), shape, n_inits=4)
    fig = plot_sensitivity(result)
    first, second = panels(fig)
    assert first.where == "left" and first.log and second.where == "right"
    assert second.log == (fig.axes[1].get_yscale() == "log")
    assert figure_problems(fig) == []


def test_zeros_on_a_log_axis_are_gaps_and_the_caption_counts_them(one_d):
    """timm's SE-ResNet-18 has exactly zero sensitivity at most positions; its ring means fell off the log axis as
    vertical lines to the frame. Zeros are now gaps in the curve, and the caption says how many."""
    result, paths = one_d
    silent = result.map.copy()
    silent[10:16] = 0.0  # a stretch no initialisation's gradient reaches, among values spanning decades
    silent[20:] *= 1e-4
    samples = result.samples.copy()
    samples[:, 10:16] = 0.0
    samples[:, 20:] *= 1e-4
    fig = plot_sensitivity(replace(result, map=silent, samples=samples, stderr=result.stderr * 0), paths=paths)
    left, right = fig.axes
    assert left.get_yscale() == "log"
    y = left.get_lines()[0].get_ydata()
    assert np.isnan(y[10:16]).all() and np.isfinite(y[:10]).all()
    assert "; gaps: 6 positions where it is exactly 0" in panel_text(fig)
    assert "gaps" not in panel_text(plot_sensitivity(result, paths=paths))  # (nothing left out: nothing said)


# ------------------------------------------------------------------ perturbation


@pytest.fixture(scope="module")
def pert2d():
    shape = (1, 10, 10)
    return perturbation(nets.from_spec("2*conv3", shape), shape, n_signs=64)


@pytest.mark.parametrize("r, drawn", [(0.11, 2), (0.9, 3)])
def test_noisy_sign_estimate_is_left_out(pert2d, r, drawn):
    fig = plot_perturbation(replace(pert2d, sign_correlation=r))
    assert len(_map_axes(fig)) == drawn == len(panels(fig))
    text = panel_text(fig)
    assert ("not shown" in text) == (r < MIN_SIGN_CORRELATION)
    assert text.startswith("(left) ") and ("(middle) " in text) == (drawn == 3)
    assert figure_problems(fig) == []


def test_one_d_perturbation_title_is_whole():
    shape = (1, 256)
    fig = plot_perturbation(perturbation(nets.from_spec("conv64/s4, conv64/s4", shape), shape, n_signs=64))
    assert layout_problems(fig) == [] and figure_problems(fig) == []
    (p,) = panels(fig)
    assert p.where == "" and p.log


def test_lint_catches_clipped_and_touching_titles():
    fig = new_figure(3, 2)
    fig.suptitle("a title far too long to fit across a figure only three inches wide " * 2)
    ax = fig.add_subplot()
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    assert any("cut off" in p for p in figure_problems(fig))
    fig = Figure(figsize=(4, 4))  # no layout engine: the panels sit where they are put
    FigureCanvasAgg(fig)
    top, bottom = fig.add_axes([0.15, 0.55, 0.8, 0.4]), fig.add_axes([0.15, 0.1, 0.8, 0.42])
    top.set_xlabel("label of the upper panel")
    bottom.set_title("title of the lower panel")
    assert any(p.startswith("title 'title of the lower panel' touches") for p in layout_problems(fig))


# ------------------------------------------------------------------ receptive fields, captions


def test_padding_layers_are_not_drawn_as_layers():
    graph = edgewise.trace(nets.from_spec("conv64/s4, conv64/s4", (1, 256)), (1, 256))
    rf = edgewise.receptive_field(graph)
    assert {"pad1", "pad2"} <= {l.name for l in rf.layers}
    fig = plot_receptive_field(rf, graph=graph)
    names = [t.get_text() for t in fig.axes[1].get_xticklabels()]
    assert names == ["input", "conv1", "conv2"]
    assert "pad1, pad2 not drawn" in fig.axes[1].get_xlabel()
    assert panel_text(fig).startswith("(top) receptive-field size") and "(bottom) share" in panel_text(fig)
    assert figure_problems(fig) == []


def test_pathways_curve_records_its_scale():
    narrow = plot_pathways(edgewise.pathways(nets.from_spec("conv64/s4, conv64/s4", (1, 256)), (1, 256)))
    assert not panels(narrow)[0].log and narrow.axes[0].get_yscale() == "linear"
    heat = plot_pathways(edgewise.pathways(nets.from_spec("2*conv3", (1, 8, 8)), (1, 8, 8)))
    assert panels(heat)[0].log


def test_section_captions_describe_the_drawn_panels(tmp_path):
    from edgewise.answer import gather

    ev = gather("conv5, conv5/s2, conv3", (1, 24, 24), n_inits=4)
    ev = replace(ev, pert=replace(ev.pert, sign_correlation=0.05))
    figs = {"receptive_field": plot_receptive_field(ev.rf, graph=ev.graph),
            "sensitivity_init": plot_sensitivity(ev.init, paths=ev.paths),
            "sensitivity_weights": plot_sensitivity(ev.own, paths=ev.paths),
            "perturbation": plot_perturbation(ev.pert)}
    s = sections.Subject(ev, "toy", figures=figs)
    w = sections.Writer(tmp_path)
    page = html.unescape(sections.sensitivity(s, w) + sections.receptive_fields(s, w))
    for fig in figs.values():
        assert panel_text(fig) in page
    pert = panel_text(figs["perturbation"])
    assert "(left)" in pert and "(right)" in pert and "(middle)" not in pert and "not shown" in pert
