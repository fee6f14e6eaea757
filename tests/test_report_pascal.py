"""The report's Pascal's-triangle picture: every model gets one, its numbers are the engine's, and they fit."""

import re
from html import unescape
from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.patches import Circle
from matplotlib.text import Annotation

import edgewise
from edgewise import nets
from edgewise._trace import trace
from edgewise.pathways import layer_counts
from edgewise.report import pascal, sections
from edgewise.report.diagram import _counted, _draw, _draw_strip, draw_diagram, draw_strip, short_count

QUESTION = "conv64/s4, conv64/s4"


def subject(spec, shape):
    graph = trace(nets.from_spec(spec, shape), shape, name=spec)
    ev = SimpleNamespace(graph=graph, name=spec, shape=shape, paths=edgewise.pathways(graph))
    return SimpleNamespace(ev=ev, slug="m", key=spec)


@pytest.fixture(scope="module")
def question(tmp_path_factory):
    """The question's own net through the report: (subject, writer, html)."""
    s = subject(QUESTION, (1, 256))
    w = sections.Writer(tmp_path_factory.mktemp("report"))
    return s, w, pascal.diagram(s, w)


def test_question_net_gets_a_strip_with_the_engines_exact_counts(question):
    s, w, html = question
    assert "No Pascal" not in html and "<img" in html
    rec = w.numbers["diagram"][QUESTION]
    assert rec["style"] == "strip" and rec["positions"] == 256 and rec["layers"] == 2
    assert rec["label_steps"] == {"input": 16, "conv1": 4, "conv2": 1}
    sliced = nets.axis_slice(s.ev.graph)
    assert rec["rows"][0]["counts"] == edgewise.pathways(sliced, (1, 256)).counts.astype(int).tolist()
    engine = layer_counts(sliced, (1, 256), to="all")
    assert [r["counts"] for r in rec["rows"]] == [engine[r["name"]].astype(int).tolist() for r in rec["rows"]]
    # every neuron's tooltip in the SVG carries its exact count
    svg = next(f for f in w.files if f.suffix == ".svg").read_text()
    tips = dict(re.findall(r"<title>(input\[\d+\]): (\d+) paths</title>", svg))
    assert [int(tips[f"input[{o}]"]) for o in range(256)] == rec["rows"][0]["counts"]


def test_question_caption_says_what_is_drawn(question):
    _, _, html = question
    caption = re.search(r"<figcaption>(.*?)</figcaption>", html, re.S).group(1)
    for part in ("256 input positions", "every 16th input and every 4th conv1 neuron", "inside every conv2 neuron",
                 "counted inward from both edges", "zero padding", "(conv1[0], conv2[0])", "70 … 240"):
        assert part in caption, part
    assert "mirror" not in caption and "3 significant digits" not in caption  # neither is drawn


def test_strip_numbers_are_the_counts_of_the_neurons_they_point_at(tmp_path):
    graph = trace(nets.from_spec(QUESTION, (1, 256), padding="same", width=1, activation=None), (1, 256))
    rows = _counted(graph, "all")
    fig, drawn, _ = _draw_strip(rows, graph, "same", "all", None, fan=0)
    ax = fig.axes[0]
    dy = 1.0 / (ax.transData.transform((0, 1))[1] - ax.transData.transform((0, 0))[1]) * fig.dpi  # rows 1 in apart
    seen = {r.name: [] for r in rows}
    for t in ax.texts:
        if not t.get_text().isdigit():
            continue
        x, y = t.xy if isinstance(t, Annotation) else t.get_position()
        row = rows[int(round(y / dy))]
        o = int(np.argmin(np.abs(row.x - x)))
        assert abs(row.x[o] - x) < 1e-9 and t.get_text() == str(row.counts[o])
        seen[row.name].append(o)
    steps = drawn["label_steps"]
    for row in rows:  # both edges numbered, every k-th in between
        got = sorted(seen[row.name])
        assert got[0] == 0 and got[-1] == row.n - 1 and len(got) >= row.n // steps[row.name]
        assert min(np.diff(got)) >= steps[row.name]


def test_strip_draws_mirror_padding_as_copies(tmp_path):
    d = draw_strip(QUESTION, (1, 256), padding="reflect", out=tmp_path / "r.svg")
    assert d.style == "strip" and set(d.drawn["padding_taps"]) & {"mirror", "wrap"}
    assert "zero" not in d.drawn["padding_taps"]
    assert d.rows[0]["counts"] == edgewise.pathways(
        nets.from_spec(QUESTION, (1, 256), padding="reflect", width=1), (1, 256)).counts.astype(int).tolist()


@pytest.mark.parametrize("count, text", [(7, "7"), (9999, "9999"), (10_000, "10.0k"), (12_345, "12.3k"),
                                         (123_456, "123k"), (999_499, "999k"), (999_949, "1.00M"),
                                         (1_234_567, "1.23M"), (10**15, "1.0e15")])
def test_short_count(count, text):
    assert short_count(count) == text


def labels_inside_circles(fig):
    """(label, fits) for every number drawn at a neuron's centre, measured on the rendered figure."""
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    circles = {(round(c.center[0], 6), round(c.center[1], 6)): c for c in ax.patches if isinstance(c, Circle)}
    out = []
    for t in ax.texts:
        c = circles.get(tuple(round(v, 6) for v in t.get_position()))
        if c is None:
            continue
        box = t.get_window_extent(renderer)
        cx, cy = ax.transData.transform(c.center)
        r = ax.transData.transform((c.center[0] + c.radius, c.center[1]))[0] - cx
        r -= c.get_linewidth() / 2 * fig.dpi / 72  # inside the drawn rim
        corners = [(x, y) for x in (box.x0, box.x1) for y in (box.y0, box.y1)]
        out.append((t.get_text(), all(np.hypot(x - cx, y - cy) <= r for x, y in corners)))
    return out


@pytest.mark.parametrize("spec, n", [("2*conv3, maxpool2, 2*conv3, maxpool2, 3*conv3", 12),  # 4 digits: 1175
                                     ("12*conv3", 26)])  # 6 digits, written short
def test_counts_fit_inside_their_neurons(spec, n, tmp_path):
    graph = trace(nets.from_spec(spec, (1, n), padding="same", width=1, activation=None), (1, n))
    rows = _counted(graph, "all")
    fig, drawn, titles = _draw(rows, graph, "same", "all", None)
    fits = labels_inside_circles(fig)
    assert len(fits) == sum(r.n for r in rows)
    assert all(ok for _, ok in fits), [t for t, ok in fits if not ok]
    assert sorted(t for t, _ in fits) == sorted(short_count(c) for r in rows for c in r.counts)
    assert drawn["font"] >= 8  # still readable
    assert drawn["short_labels"] == (max(drawn["counts"]) >= 10_000)


def test_short_labels_keep_the_exact_count_in_the_svg(tmp_path):
    d = draw_diagram("12*conv3", (1, 26), padding="same", out=tmp_path / "big.svg")
    assert d.drawn["short_labels"] and max(d.rows[0]["counts"]) == 3**12
    svg = d.svg.read_text()
    assert ">531k<" in svg and "<title>input[13]: 531441 paths</title>" in svg


def test_narrow_model_caption_and_record(tmp_path):
    s = subject("2*conv3, maxpool2, 2*conv3, maxpool2, 3*conv3", (1, 64, 64))
    w = sections.Writer(tmp_path)
    html = pascal.diagram(s, w)
    caption = re.search(r"<figcaption>(.*?)</figcaption>", html, re.S).group(1)
    rec = w.numbers["diagram"][s.key]
    assert rec["style"] == "neurons" and rec["positions"] == 12 and set(rec["label_steps"].values()) == {1}
    assert "Grey dashed neurons: zero padding" in caption and "vermilion" not in caption.lower()
    assert f"1 to {max(rec['rows'][0]['counts']):,}" in caption


def _caption_and_record(spec, shape, tmp_path, paths=None, padding="valid"):
    graph = trace(nets.from_spec(spec, shape, padding=padding), shape, name=spec)
    ev = SimpleNamespace(graph=graph, name=spec, shape=shape, paths=paths or edgewise.pathways(graph))
    w = sections.Writer(tmp_path)
    html = pascal.diagram(SimpleNamespace(ev=ev, slug="m", key=spec), w)
    caption = re.sub(r"\s+", " ", re.search(r"<figcaption>(.*?)</figcaption>", html, re.S).group(1))
    return unescape(caption), w.numbers["diagram"][spec]


PATCHES = "conv4/s4, conv2/s2, conv2/s2, conv2/s2, gap"  # Swin-T's slice: patchify, three merges, a global pool


def test_a_slice_reads_every_input_where_the_model_does(tmp_path):
    """On 64 columns the model reads them all; its slice on 40 positions would drop the last 8 (40/4 = 10, 5, 2):
    the diagram takes a length at which the slice reads them all too (32), and the caption says so."""
    caption, rec = _caption_and_record(PATCHES, (1, 64, 64), tmp_path)
    counts = rec["rows"][0]["counts"]
    assert rec["positions"] == 32 and min(counts) > 0
    assert "Every input gets 1 path; every count in the picture is 1." in caption
    assert "no path" not in caption and "1 … 1" not in caption


def test_unread_inputs_of_the_slice_are_counted_in_the_caption(tmp_path):
    """On 72 columns the model itself drops 8 (72/4 = 18, 9, 4, 2): the slice's own unread inputs stand, counted."""
    caption, rec = _caption_and_record(PATCHES, (1, 64, 72), tmp_path)
    counts = rec["rows"][0]["counts"]
    unread = sum(c == 0 for c in counts)
    assert rec["positions"] == 40 and unread == 8
    assert f"{unread} of the 40 inputs get no path, the others 1 path each;" in caption
    assert "The inputs get" not in caption and "the model itself" not in caption


def test_a_slice_that_cannot_read_what_the_model_reads_says_so(tmp_path):
    """Where the model reads every column but no drawable length lets its slice do so (here the evidence says
    the model reads all; its windows of 2 every 3 never can), the caption sets the two apart."""
    spec, shape = "conv2/s3, gap", (1, 8, 30)
    reads_all = SimpleNamespace(counts=np.ones(shape[1:]), log10=np.zeros(shape[1:]))
    caption, rec = _caption_and_record(spec, shape, tmp_path, paths=reads_all)
    unread = sum(c == 0 for c in rec["rows"][0]["counts"])
    assert unread > 0
    assert (f"{unread} of the {rec['positions']} inputs get no path" in caption
            and "(the model itself reads all 30 of its own columns; at no input length the diagram can draw does "
                "this slice)" in caption)


def test_a_slice_shows_the_centres_advantage_where_the_model_has_one(tmp_path):
    """ConvNeXt-T's slice on 12 positions has 3 units a row, each reading all 3 below through its 7 taps, so every
    input got 27 paths on a model whose own counts differ 59.8×: the diagram takes the shortest length at which
    the slice's counts differ too (here 17, the inputs getting 88 … 107 paths)."""
    caption, rec = _caption_and_record("conv4/s4, conv7, conv7, conv7", (1, 64, 64), tmp_path, padding="same")
    counts = rec["rows"][0]["counts"]
    assert rec["positions"] == 17 and min(counts) < max(counts) and min(counts) > 0
    assert f"The inputs get {min(counts):,} … {max(counts):,} paths;" in caption


def test_a_uniform_slice_of_an_uneven_model_says_so(tmp_path):
    """Where the model's counts differ (here by the evidence: 3.08×, as Swin-T's attention makes them) but its
    slice's never do (non-overlapping windows and a global pool), the caption sets the two apart."""
    log10 = np.zeros((64, 64))
    log10[32, 32] = np.log10(3.08)
    evidence = SimpleNamespace(counts=10 ** log10, log10=log10)
    caption, rec = _caption_and_record(PATCHES, (1, 64, 64), tmp_path, paths=evidence)
    assert rec["positions"] == 32 and set(rec["rows"][0]["counts"]) == {1}
    assert ("Every input gets 1 path (the model's own counts differ, max/min 3.08× over its input; at no input "
            "length the diagram can draw does this slice show that); every count in the picture is 1.") in caption


def test_long_layer_names_fit_beside_their_rows():
    """Inception V3's row names ("Mixed_5d_branch3x3dbl_3_conv") ran off the diagram's left edge: the name column
    is as wide as its widest name."""
    from collections import OrderedDict

    import torch.nn as nn

    from edgewise.report.diagram import sketch
    from edgewise.testing.figure_lint import layout_problems

    net = nn.Sequential(OrderedDict([("Mixed_5d_branch3x3dbl_3_conv", nn.Conv1d(1, 1, 3, padding=1)),
                                     ("Mixed_6e_branch7x7dbl_5_conv", nn.Conv1d(1, 1, 3, padding=1))]))
    fig, _, _ = sketch(draw_diagram, net, (1, 7))
    assert layout_problems(fig) == []


def test_the_caption_names_the_attention_layers_the_slice_leaves_out(tmp_path):
    """ViT's slice drew its patch embedding and the class token's attention and said "the model's layers": the
    attention layers between them, where every token reads every token, were not drawn and not named."""
    pytest.importorskip("torchvision")
    from test_modern import small

    model, shape = small("swin")
    graph = trace(model, shape, name="swin")
    ev = SimpleNamespace(graph=graph, name="swin", shape=shape, paths=edgewise.pathways(graph))
    w = sections.Writer(tmp_path)
    html = pascal.diagram(SimpleNamespace(ev=ev, slug="m", key="swin"), w)
    caption = unescape(re.sub(r"\s+", " ", re.search(r"<figcaption>(.*?)</figcaption>", html, re.S).group(1)))
    left = w.numbers["diagram"]["swin"]["left_out"]
    assert len(left) == 4 and all(graph[n].op == "attention" for n in left)
    rows = [r["name"] for r in w.numbers["diagram"]["swin"]["rows"][1:]]  # the model's own names ("features.0.0")
    assert all(r in graph for r in rows) and any("." in r for r in rows), rows
    assert (f"It leaves out 4 layers on the way that mix positions other than by sliding windows (attention: "
            f"{left[0]}, {left[1]}, {left[2]} and 1 more), so its counts are not the model's.") in caption
    assert "the model's sliding-window layers" in caption or "sliding-window layers along" in caption
    plain = _caption_and_record("2*conv3, maxpool2", (1, 16, 16), tmp_path / "plain")[0]
    assert "leaves out" not in plain


def test_a_pool_to_one_position_is_labelled_global():
    """A global pool (and the attention a slice turns into one) was labelled "adaptive" beside its row."""
    from edgewise.report.diagram import sketch

    fig, _, d = sketch(draw_diagram, nets.from_spec("2*conv3, gap", (1, 8)), (1, 8))
    labels = [t.get_text() for ax in fig.axes for t in ax.texts if "\n" in t.get_text()]
    assert "gap1\nglobal" in labels and not any("adaptive" in t for t in labels)
