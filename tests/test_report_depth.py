"""The report's depth-scaling figures: legend, title, caption and table say what the data say, and are readable."""

import math
import re
from types import SimpleNamespace

import numpy as np
import pytest

from edgewise import theory
from edgewise._trace import trace
from edgewise.models import load
from edgewise.report import sections
from edgewise.report.scaling import (law_label, padding_law, plot_layers, plot_scaling, scaling_caption,
                                     scaling_table)
from edgewise.scaling import Scaling, _is_uniform, scaling
from edgewise.testing.figure_lint import figure_problems

#: what the caption says about each kind of law (and says about no other kind)
VERBS = {"exponential": "grows exponentially|grow exponentially", "decay": "shrinks? exponentially",
         "sqrt": "like √L|like L \\(√L per axis\\)", "power": "power laws? of L", "bounded": "stays? bounded",
         "uniform": "same count", "flat": "near 1 without uniform", "none": "too few depths",
         "irregular": "no simple law"}


def _clipped(fig) -> list[str]:
    """Texts that reach the figure's edge at the report's resolution (tick labels only where their tick is inside
    the axis range)."""
    fig.set_dpi(150)  # as save_figure writes it: font metrics do not scale exactly with the resolution
    fig.canvas.draw()
    renderer, box = fig.canvas.get_renderer(), fig.bbox
    texts = [fig._suptitle, *fig.texts, *(t for lg in fig.legends for t in (*lg.get_texts(), lg.get_title()))]
    for ax in fig.axes:
        texts += [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
        for labels, ticks, (lo, hi) in ((ax.get_xticklabels(), ax.get_xticks(), ax.get_xlim()),
                                        (ax.get_yticklabels(), ax.get_yticks(), ax.get_ylim())):
            texts += [t for t, v in zip(labels, ticks) if min(lo, hi) <= v <= max(lo, hi)]
    out = []
    for t in texts:
        if t is None or not (t.get_visible() and t.get_text().strip()):
            continue
        e = t.get_window_extent(renderer)
        if e.x0 < box.x0 + 1 or e.y0 < box.y0 + 1 or e.x1 > box.x1 - 1 or e.y1 > box.y1 - 1:
            out.append(t.get_text())
    return out


def _labelled_yticks(ax) -> list[str]:
    """The y tick labels a reader sees: inside the axis range, with a number on them."""
    lo, hi = ax.get_ylim()
    return [t.get_text() for t, v in zip(ax.get_yticklabels(), ax.get_yticks())
            if lo <= v <= hi and re.search(r"\d", t.get_text())]


def _sentence(caption: str, padding: str) -> str:
    """The caption's sentence whose subject (the names before the verb) includes ``padding``."""
    verb = r" (grows?|shrinks?|follows?|stays?|keeps?|gives?|has|have) "
    hits = [s for s in re.split(r"(?<=\.) (?=[A-Z])", caption) if re.search(verb, s)
            and padding in re.split(r", | and ", re.split(verb, s)[0].lower())]
    assert len(hits) == 1, (padding, caption)
    return hits[0]


def _check_agreement(result):
    """Legend, title, caption and table state the same law per padding, and the figure reads well."""
    fig, caption, table = plot_scaling(result), scaling_caption(result), scaling_table(result)
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == [f"{p}: {law_label(result, p)}" for p in result.ratios]
    sources = {padding_law(result, p)["source"] for p in result.ratios}
    title = legend.get_title().get_text()
    assert ("solid: closed form" in title) == any(p in result.exact and padding_law(result, p)["source"] != "fit"
                                                  for p in result.ratios)
    assert ("dashed: fit" in title) == ("fit" in sources)
    assert "fit" not in fig._suptitle.get_text() and "closed form" not in fig._suptitle.get_text()
    assert result.block in fig._suptitle.get_text()
    for row, padding in zip(table.rows, result.ratios):
        law = padding_law(result, padding)
        assert row[1] == law_label(result, padding) and row[2] == (law["source"] or "—")
        sentence = _sentence(caption, padding)
        assert re.search(VERBS[law["kind"]], sentence), (padding, law["kind"], sentence)
        assert not any(re.search(v, sentence) for k, v in VERBS.items() if k != law["kind"]), sentence
        if law["source"] == "fit":  # a bounded fit says how little its deeper half moves, not a flat line's R²
            assert row[1].startswith("no simple law (best fit: " if law["kind"] == "irregular" else "fit: ")
            assert ("from L = " if law["kind"] == "bounded" else "R²") in row[1]
        else:
            assert "fit" not in row[1] and "R²" not in row[1]
    assert figure_problems(fig) == [] and _clipped(fig) == []
    for ax in fig.axes:
        assert len(_labelled_yticks(ax)) >= 2
    scales = {ax.get_yscale() for ax in fig.axes} | {ax.get_xscale() for ax in fig.axes}
    if "log" in caption:
        assert "log" in scales
    return fig, caption


def _plotted(fig, result, padding, style):
    """The y values of the line drawn for ``padding`` in ``style`` on the first panel."""
    colour = fig.legends[0].legend_handles[list(result.ratios).index(padding)].get_color()
    lines = [ln for ln in fig.axes[0].get_lines() if ln.get_linestyle() == style and ln.get_color() == colour]
    assert len(lines) == 1
    return np.asarray(lines[0].get_ydata(), dtype=float)


@pytest.fixture(scope="module")
def conv3():
    return scaling("conv3", "1:12", ("valid", "same", "full", "circular", "reflect"), input_shape=(1, 24),
                   progress=False)


def test_valid_padding_is_exponential_and_its_line_is_the_exact_count(conv3):
    fig, caption = _check_agreement(conv3)
    assert law_label(conv3, "valid").startswith("exponential, ×3 per layer")
    # the closed form is drawn per depth, exactly (not the asymptotic 3**L: n = 24 has partial sums past L = 5)
    line = _plotted(fig, conv3, "valid", "-")
    finite = np.isfinite(conv3.ratios["valid"])
    np.testing.assert_allclose(line[finite], np.asarray(conv3.ratios["valid"])[finite], rtol=1e-12)
    assert any(r < 3.0 ** L for L, r in zip(conv3.depths, conv3.ratios["valid"]) if math.isfinite(r))
    assert conv3.exact["valid"][3] == float(theory.ratio("valid", 3, 24, 4))
    assert law_label(conv3, "same").startswith("≈√L, saturating at ")
    assert law_label(conv3, "reflect") == "bounded → 2"
    assert law_label(conv3, "full") == law_label(conv3, "circular") == "uniform (max = min)"
    assert "Valid grows exponentially (×3 per layer" in caption and "Same grows like √L" in caption
    assert "Full and circular give every position the same count" in caption
    doc = conv3.to_dict()
    assert doc["uniform"] == {"valid": False, "same": False, "full": True, "circular": True, "reflect": False}
    assert doc["theory_params"]["valid"] == {"base": 3.0, "exact_depth": 5, "max_depth": 11}


def test_a_2d_stack_multiplies_the_axes_laws():
    s = scaling("conv3", "1:4", ("valid", "same"), input_shape=(1, 12, 12), progress=False)
    assert s.theory_params["valid"]["base"] == 9.0 and law_label(s, "valid").startswith("exponential, ×9 per layer")
    np.testing.assert_allclose(s.exact["same"], s.ratios["same"], rtol=1e-12)
    assert "like L (√L per axis)" in scaling_caption(s)
    _check_agreement(s)


def test_without_a_closed_form_the_law_is_a_labelled_fit_and_never_called_sqrt():
    # the default 1-D model's kernel: an even 64-tap "same" stack has no closed form and levels off
    s = scaling("conv64", [1, 2, 4, 8, 16, 24, 32, 48, 64], ("valid", "same", "circular"), input_shape=(1, 256),
                progress=False)
    assert "same" not in s.exact and padding_law(s, "same") ["kind"] == "bounded"
    assert law_label(s, "same") == "fit: bounded (×1.009 from L = 24 to 64); theory: → 6.41"
    assert law_label(s, "same", limit=False) == "fit: bounded (×1.009 from L = 24 to 64)"
    fig, caption = _check_agreement(s)
    line = _plotted(fig, s, "same", "--")  # the limit is drawn over the deeper half it describes, not from L = 1
    assert np.isnan(line[np.asarray(s.depths) < 24]).all() and np.allclose(line[np.asarray(s.depths) >= 24], 6.41,
                                                                              rtol=1e-3)
    assert "√L" not in caption and "Same stays bounded (fit, no closed form" in caption
    assert law_label(s, "valid") == "exponential, ×64 per layer (= 64ᴸ for L ≤ 2)"
    line = _plotted(fig, s, "valid", "-")
    np.testing.assert_allclose(line[:3], [64, 4096, 698755], rtol=1e-12)  # L = 1, 2, 4: exact, not 64**4
    assert len(fig.axes) == 2 and fig.axes[1].get_xscale() == "log"  # the bounded paddings get their own panel


@pytest.mark.parametrize("block, shape, paddings", [("conv64", (1, 256), ("same", "reflect", "replicate")),
                                                     ("conv4", (1, 24, 32), ("same", "reflect", "symmetric")),
                                                     ("conv3/d2", (1, 32), ("same", "reflect"))])
def test_a_fitted_law_says_the_limit_theory_gives_it(block, shape, paddings):
    """Where theory has no closed form, the caption gives the limit the ratio tends to: the product over the axes
    of each axis's limit, worked out here apart from the theory (numpy's eigenvector of one layer's matrix); it is
    left out where one layer's matrix gives no single limit (dilated reflect: two classes that never meet)."""
    from edgewise.testing.claims import _deep_ratio

    s = scaling(block, [1, 2, 4, 8, 16, 32], paddings, input_shape=shape, progress=False)
    caption = scaling_caption(s)
    k, d = (int(v) for v in (block.removeprefix("conv").split("/d") + ["1"])[:2])
    for padding in paddings:
        if block == "conv3/d2":
            assert padding in s.exact or padding not in s.limits
            continue
        deep = math.prod(_deep_ratio(padding, k, n, d) for n in shape[1:])
        assert s.limits[padding] == pytest.approx(deep, rel=1e-6), padding
        assert f"tending to {deep:.3g} as L → ∞ (theory)" in _sentence(caption, padding), padding
    if block == "conv3/d2":
        assert "reflect" not in s.limits and "tending to" not in caption


def test_uniform_is_decided_by_the_exact_counts_not_a_rounded_ratio():
    assert _is_uniform(np.array([4, 4, 4])) and not _is_uniform(np.array([3, 4, 3]))  # centre = edge is not enough
    assert not _is_uniform(np.array([10**30, 10**30 + 1], dtype=object))  # equal as floats, not as integers
    near = Scaling("conv3", (1, 8), [1, 2, 3], {"x": [1.0, 1.0, 1.0]}, "edge",
                   laws={"x": {"kind": "uniform", "params": {"ratio": 1.0}, "r2": 1.0}}, uniform={"x": False})
    assert "uniform (max" not in law_label(near, "x") and "same count" not in scaling_caption(near)
    exact = Scaling("conv3", (1, 8), [1, 2, 3], {"x": [1.0, 1.0, 1.0]}, "edge",
                    laws={"x": {"kind": "uniform", "params": {"ratio": 1.0}, "r2": 1.0}}, uniform={"x": True})
    assert law_label(exact, "x") == "uniform (max = min)"


def _subject(model: str, shape) -> sections.Subject:
    graph = trace(load(model, shape), shape, name=model)
    ev = SimpleNamespace(name=model, shape=shape, graph=graph, key="corner" if len(shape) == 3 else "edge")
    return sections.Subject(ev, "m")


def test_per_layer_plot_has_numbered_ticks_and_marks_every_pool_and_stride():
    s = _subject("conv9/s4, conv9, maxpool2", (1, 96))  # a short range: matplotlib alone labels no tick
    layers = [{**r, "op": s.ev.graph[r["name"]].op} for r in sections.layer_ratios(s)]
    fig = plot_layers(layers, s.where, s.ev.name)
    (ax,) = fig.axes
    assert len(_labelled_yticks(ax)) >= 2
    assert [t.get_text() for t in ax.texts] == ["stride 4", "maxpool ÷2"]
    assert len(ax.patches) == 2 and "shaded" in ax.get_xlabel()
    assert figure_problems(fig) == [] and _clipped(fig) == []
    plain = plot_layers([{"name": "conv1", "kind": "conv", "stride": [1], "ratio": 1.5},
                         {"name": "conv2", "kind": "conv", "stride": [1], "ratio": 1.8}], "edge",
                        "conv3, conv3/d2, conv3/d4, conv3/d8, conv3/d16, conv3/d32, conv3/d64, Model:with_a_long_name")
    assert _clipped(plain) == []
    assert not plain.axes[0].texts and "shaded" not in plain.axes[0].get_xlabel()
    assert len(_labelled_yticks(plain.axes[0])) >= 2


def test_depth_section_captions_and_numbers_come_from_the_same_laws(tmp_path, monkeypatch):
    drawn = {}
    original = sections.Writer.figure

    def keep(self, fig, ident, caption):
        drawn[ident] = (fig, caption)
        return original(self, fig, ident, caption)

    monkeypatch.setattr(sections.Writer, "figure", keep)
    s = _subject("conv5/s2, conv5, avgpool2", (1, 40))
    w = sections.Writer(tmp_path)
    html = sections.depth(s, w, depths=(1, 2, 3, 4, 6))
    numbers = w.numbers["depth"][s.key]
    assert {"layers", "layer_ratios", "layer_steps", "block", "scaling_input", "laws", "theory_kind", "uniform",
            "scaling_laws"} <= set(numbers)
    assert numbers["layer_steps"] == {"conv1": "stride 2", "avgpool1": "avgpool ÷2"}
    fig, caption = drawn["m-scaling"]
    result = scaling("conv5", (1, 2, 3, 4, 6), sections.PADDING_MODES[:-1], input_shape=(1, 40), progress=False)
    assert caption.endswith(scaling_caption(result))
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == [f"{p}: {v['label']}" for p, v in numbers["scaling_laws"].items()]
    for padding, law in numbers["scaling_laws"].items():
        assert law["label"] in html and law["kind"] == padding_law(result, padding)["kind"]
    layers_fig, layers_caption = drawn["m-layers"]
    assert "stride 2 at conv1" in layers_caption and "avgpool ÷2 at avgpool1" in layers_caption
    for f, cap in drawn.values():
        assert figure_problems(f) == [] and _clipped(f) == []
        if "log" in cap:
            assert any("log" in (ax.get_yscale(), ax.get_xscale()) for ax in f.axes)


def test_a_poor_fit_is_no_law_and_a_flat_tail_says_how_little_it_moves():
    """An even 2-tap 'same' stack on 64 samples rises to 2, stays there, then falls to 0.9 as its off-centre
    windows pile up at one end: the best fit, ×0.995 per layer at R² 0.187, was shown as its law. A bounded fit's
    R² is that of a line through a flat tail (0.395 for the same stack on 256 samples), which says nothing about
    whether it levels off: the label says by how much the deeper half moves instead."""
    s = scaling("conv2", [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64], ("same",), progress=False)
    assert padding_law(s, "same")["kind"] == "irregular"
    assert law_label(s, "same") == "no simple law (best fit: exponential, ×0.995 per layer, R² 0.187)"
    assert "Same follows no simple law of L (fit, no closed form; best fit ×0.995 per layer, R² 0.187, 0.901× at " \
           "L = 64)." in scaling_caption(s)
    s = scaling("conv2", [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64], ("same",), input_shape=(1, 256), progress=False)
    assert law_label(s, "same") == "fit: bounded → 2 (×1.000 from L = 12 to 64)"
    assert "R²" not in scaling_caption(s)
