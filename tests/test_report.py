"""The report: one self-contained page whose numbers are the engines' numbers, readable figures, clear errors."""

import base64
import csv
import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import edgewise
from edgewise import nets
from edgewise.cli import main
from edgewise.errors import EdgewiseError
from edgewise.report import builder as build_mod
from edgewise.report import sections, trained
from edgewise.report.builder import SECTIONS, build
from edgewise.testing.figure_lint import figure_problems

MODELS = ["4*conv3", "res(conv3, conv3), conv3/s2"]
SHAPES = [(1, 16, 16), (1, 24)]


class _Page(HTMLParser):
    """Ids, links, images and section titles of a page."""

    def __init__(self):
        super().__init__()
        self.ids, self.hrefs, self.srcs, self.h2, self._in_h2 = set(), [], [], [], False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if "href" in a:
            self.hrefs.append(a["href"])
        if "src" in a:
            self.srcs.append(a["src"])
        self._in_h2 = tag == "h2"

    def handle_data(self, data):
        if self._in_h2:
            self.h2.append(data)
            self._in_h2 = False


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A report of a plain and a residual/strided spec net, with every figure it drew kept for inspection."""
    drawn = []
    original = sections.Writer.figure

    def keep(self, fig, ident, caption):
        drawn.append((ident, fig))
        return original(self, fig, ident, caption)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sections.Writer, "figure", keep)
        out = tmp_path_factory.mktemp("report")
        r = build(MODELS, SHAPES, out=out, n_inits=4, remedy_inits=2, progress=False)
    return r, out, drawn


def _parse(path) -> _Page:
    p = _Page()
    p.feed(path.read_text())
    return p


def test_page_is_self_contained_and_every_link_resolves(report):
    r, out, _ = report
    assert r.path == out / "index.html"
    p = _parse(r.path)
    assert p.srcs and all(s.startswith("data:image/png;base64,") for s in p.srcs)
    for s in p.srcs:
        assert base64.b64decode(s.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [h for h in p.hrefs + p.srcs if re.match(r"(https?:)?//", h)]
    anchors = [h[1:] for h in p.hrefs if h.startswith("#")]
    assert anchors and not [a for a in anchors if a not in p.ids]
    files = [h for h in p.hrefs if not h.startswith("#")]
    assert files and all((out / f).is_file() for f in files)  # the answer links its numbers


def test_the_explorer_is_written_beside_the_page_and_linked(report):
    """explore.html sits next to index.html, opened on the first model it draws (4*conv3 here); the report links
    to it from the pathways section and itself stays free of scripts."""
    r, out, _ = report
    explorer = out / "explore.html"
    assert explorer.is_file() and explorer in r.files
    text = r.path.read_text()
    assert '<a href="explore.html">' in text and "<script" not in text.lower()
    assert text.index('href="explore.html"') > text.index('<section id="pathways">')
    config = json.loads(re.search(r'id="ew-config">(.*?)</script>', explorer.read_text()).group(1))
    assert config["input"] == [16, 16] and config["padding"] == "same"
    assert config["rows"] == [{"kind": "conv", "k": 3, "s": 1, "d": 1, "rep": 4, "pad": None}]


def test_sections_in_order_with_every_model(report):
    r, _, _ = report
    p = _parse(r.path)
    assert p.h2 == [t for _, t, _, _ in SECTIONS] + ["7. Trained networks",
                                                     "8. What trained networks learned about position"] == r.sections
    text = r.path.read_text()
    for name in MODELS:
        assert text.count(f"{name}, input") >= len(SECTIONS)  # a sub-heading per section
    assert "--train" in text  # section 7 says how to get it


def test_numbers_are_the_engines(report):
    r, out, _ = report
    doc = json.loads((out / "report.json").read_text())
    assert doc["config"]["models"] == MODELS and doc["config"]["n_inits"] == 4
    net = nets.from_spec(MODELS[0], SHAPES[0])
    expect = edgewise.pathways(net, SHAPES[0]).summary["center_corner_ratio"]
    assert doc["numbers"]["pathways"][MODELS[0]]["summary"]["center_corner_ratio"] == pytest.approx(expect)
    assert np.allclose(np.load(out / "data" / "4-conv3" / "pathways.log10.npy"),
                       edgewise.pathways(net, SHAPES[0]).log10)
    # the padding-mode table quotes the same counts as the engine with that padding
    full = nets.from_spec(MODELS[0], SHAPES[0], padding="valid")
    with open(out / "data" / "4-conv3" / "padding_modes.csv") as f:
        rows = {row[0]: row for row in csv.reader(f)}
    assert rows["valid"][1] == edgewise.report.tables.ratio_text(
        edgewise.pathways(full, SHAPES[0]).summary["center_corner_ratio"])
    rf = edgewise.receptive_field(net, SHAPES[0])
    with open(out / "data" / "4-conv3" / "receptive_fields.csv") as f:
        assert len(list(csv.reader(f))) - 1 == sum(l.kind != "identity" for l in rf.layers)
    # the per-layer depth curve ends at the whole model's ratio
    depth = doc["numbers"]["depth"][MODELS[0]]
    assert depth["layers"] == ["conv1", "conv2", "conv3", "conv4"]
    assert depth["layer_ratios"][-1] == pytest.approx(expect)
    assert depth["layer_ratios"] == sorted(depth["layer_ratios"])  # the gap grows with depth under zero padding


def test_one_d_model_gets_edge_ratios_and_a_pascal_diagram(report):
    r, out, _ = report
    doc = json.loads((out / "report.json").read_text())
    one_d = doc["numbers"]["pathways"][MODELS[1]]["summary"]
    assert "center_edge_ratio" in one_d
    diagram = doc["numbers"]["diagram"][MODELS[0]]
    bottom = diagram["rows"][0]["counts"]
    assert bottom == bottom[::-1] and max(bottom) > min(bottom)  # symmetric, centre favoured
    assert (out / "figures" / "4-conv3-pascal.png").is_file()


def test_every_figure_is_readable(report):
    _, _, drawn = report
    assert len(drawn) >= 20
    problems = {ident: figure_problems(fig) for ident, fig in drawn}
    assert {k: v for k, v in problems.items() if v} == {}
    titles = {ident: fig._suptitle.get_text().replace("\n", " ") for ident, fig in drawn if fig._suptitle}
    assert titles["4-conv3-padding-modes"].startswith("Padding schemes for 4*conv3 on 1x16x16")
    assert titles["4-conv3-remedies"].startswith("Remedies for 4*conv3 on 1x16x16")


def test_lint_catches_an_unreadable_figure():
    from edgewise.report.figures import new_figure

    fig = new_figure(3, 3)
    ax = fig.add_subplot()
    ax.imshow(np.eye(3), cmap="jet")
    ax.text(0, 0, "tiny", fontsize=4)
    found = " ".join(figure_problems(fig))
    for what in ("no title", "no x label", "jet", "colour bar", "tiny"):
        assert what in found


def test_repr_html_embeds_the_page(report):
    r, _, _ = report
    snippet = r._repr_html_()
    assert snippet.startswith("<iframe srcdoc=") and "Do central pixels" in snippet


def test_bad_models_and_shapes_are_clear_errors(tmp_path):
    with pytest.raises(EdgewiseError, match="at least one model"):
        build([], out=tmp_path)
    with pytest.raises(EdgewiseError, match="2 models but 3 input shapes"):
        build(MODELS, [(1, 8, 8)] * 3, out=tmp_path)
    with pytest.raises(EdgewiseError, match="needs an input shape"):
        build(nets.from_spec("conv3", (1, 8)).__class__(), out=tmp_path)
    assert main(["report", "4*conv3", "--out", str(tmp_path)]) == 2
    assert main(["report", "--input", "1x8", "--out", str(tmp_path)]) == 2


def test_cli_report_progress_and_json(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # the bar is drawn on a terminal only
    assert main(["report", "3*conv3", "--input", "1x10x10", "--inits", "2", "--remedy-inits", "0",
                 "--out", str(tmp_path / "r")]) == 0
    captured = capsys.readouterr()
    assert "wrote" in captured.out and "index.html" in captured.out
    for label in ("measuring 3*conv3", "2. Pathways", "6. Remedies", "writing the page"):
        assert label in captured.err  # the progress bar names the part being computed
    assert main(["report", "3*conv3", "--input", "1x10", "--inits", "2", "--remedy-inits", "0",
                 "--out", str(tmp_path / "j"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["path"].endswith("index.html") and doc["config"]["input_shapes"] == [[1, 10]]


def test_trained_parts_train_visualize_and_save(tmp_path, monkeypatch):
    """Section 7 and the after-training sensitivity on a tiny budget (one seed, one task, few steps)."""
    monkeypatch.setattr(trained, "TASKS", ("symmetry",))
    w = sections.Writer(tmp_path)
    html = trained.experiments(w, "quick", seeds=1)
    assert "symmetry" in html and "constant" in html and (tmp_path / "experiments" / "symmetry" / "experiment.json").is_file()
    net, shape, images = trained.trained_net("quick")
    assert shape == (1, 28, 28) and images.shape[1:] == shape
    part = trained.after_training(w, net, shape, images, n_inits=2, seed=0)
    ratios = w.numbers["after_training"]["border-digits:same"]
    assert ratios["trained"] > 0 and ratios["paths"] > 1 and "After training" in part
    vis = trained.visualization(w, net, shape, "border-digits net", steps=3, seeds=2)
    assert "visualize-grid" in vis and (tmp_path / "figures" / "visualize-index.png").is_file()
    assert w.numbers["visualize"]["border-digits net"]["layer"] == "conv3"


def test_default_models_are_the_question_and_the_vgg_net():
    assert build_mod.DEFAULT_MODELS == ((nets.QUESTION_SPEC, (1, 256)), (nets.DEFAULT_SPEC, nets.DEFAULT_INPUT))


@pytest.mark.browser  # skipped without the browser, required in CI (conftest.py)
def test_page_in_a_real_browser(report):
    """Headless Chromium loads the page from disk: no console errors, nothing fetched, every figure has a size;
    the screenshot is kept in artifacts/ (CI's test artefact)."""
    from edgewise.testing.browser import check_page

    r, _, drawn = report
    shot = Path(__file__).resolve().parent.parent / "artifacts" / "report.png"
    check = check_page(r.path, screenshot=shot)
    assert check.console_errors == [] and check.external == [] and check.broken_images == []
    assert check.ok and check.title == "Do central pixels have more pathways?"
    assert len(check.images) >= len(drawn)  # every figure, plus the diagrams
    assert all(i["width"] > 100 and i["height"] > 100 for i in check.images)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and check.page_height > 5000


def test_bad_options_are_refused_before_any_work(tmp_path):
    for options, what in [({"n_inits": 1}, "n_inits"), ({"remedy_inits": -1}, "remedy_inits"),
                          ({"padding": "mirror"}, "unknown padding 'mirror'"), ({"size": "huge"}, "size"),
                          ({"seeds": 0}, "seeds")]:
        with pytest.raises(EdgewiseError, match=what):
            build("4*conv3", (1, 8, 8), out=tmp_path, progress=False, **options)
    assert not list(tmp_path.iterdir())


def test_same_command_same_numbers_and_repeated_models_kept_apart(tmp_path, monkeypatch):
    """Seeds are explicit: two runs agree on every number, also when the models are measured in the other order
    (the cheapest first by default); a model given twice gets two entries."""
    runs = [build(["3*conv3", "3*conv3"], [(1, 12), (1, 16)], out=tmp_path / name, n_inits=3, remedy_inits=2,
                  progress=False) for name in ("a", "b")]
    sizes = build_mod._check_sizes
    monkeypatch.setattr(build_mod, "_check_sizes", lambda *a: (lambda acts, flops: (acts, [-f for f in flops]))(
        *sizes(*a)))  # the costliest first instead
    runs.append(build(["3*conv3", "3*conv3"], [(1, 12), (1, 16)], out=tmp_path / "c", n_inits=3, remedy_inits=2,
                      progress=False))
    numbers = [json.loads((r.path.parent / "report.json").read_text())["numbers"] for r in runs]
    assert numbers[0] == numbers[1] == numbers[2]
    assert set(numbers[0]["pathways"]) == {"3*conv3, input 1x12", "3*conv3, input 1x16"}
    assert len({p.name for p in (tmp_path / "a" / "data").iterdir()}) == 2


def test_cli_report_names_a_trained_task_net_as_given(tmp_path, capsys, monkeypatch):
    """experiment: references are trained once by the CLI, named as given, and marked as trained."""
    from edgewise.experiments import tasks

    original = tasks.Task.config
    monkeypatch.setattr(tasks.Task, "config", lambda self, size="quick", **kw: {**original(self, size, **kw),
                                                                               "epochs": 1})  # seconds, not a minute
    assert main(["report", "experiment:border-1d:full", "--inits", "2", "--remedy-inits", "0",
                 "--out", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["config"]["models"] == ["experiment:border-1d:full"]
    numbers = json.loads((tmp_path / "report.json").read_text())["numbers"]
    assert numbers["sensitivity"]["experiment:border-1d:full"]["trained"] is True
    assert "its trained weights" in (tmp_path / "index.html").read_text()
