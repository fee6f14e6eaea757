"""Section 8 of the report, "What trained networks learned about position": its sentences are the probes' own,
its figures are written, its numbers recorded, and it runs when (and only when) it should."""

import html
import json
import re

import pytest

from edgewise.report import builder, learned, sections
from edgewise.report.builder import build
from edgewise.testing.planted import planted_detector

SMALL = {"bias_n": 8, "units_n": 8, "blind_spot_positions": 4, "perturb_n": 2, "perturb_steps": 4,
         "perturb_inits": 1, "readout_n": 8}


@pytest.fixture
def small(monkeypatch):
    monkeypatch.setattr(learned, "SETTINGS", SMALL)


def _text(page: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


@pytest.mark.parametrize("padding", ["zeros", "circular"])
def test_the_section_says_what_the_probes_found(tmp_path, small, padding):
    from edgewise.probe import bias, subject, units

    model, shape, (layer, channel) = planted_detector(padding)
    w = sections.Writer(tmp_path)
    page = learned.section(w, [(model, shape, f"planted ({padding})")])
    text = _text(page)
    sub = subject(model, shape)
    sub.name = f"planted ({padding})"
    cache = tmp_path / "experiments" / "probe"
    found = units(sub, n=SMALL["units_n"], cache=cache, progress=False)
    for line in found.text() + bias(sub, n=SMALL["bias_n"], cache=cache, progress=False).text():
        assert _text(line) in text  # every sentence on the page is the result's own
    numbers = w.numbers["learned"]
    assert numbers[f"planted ({padding}):units"]["units"] == found.summary["units"]
    figures = {p.name for p in (tmp_path / "figures").iterdir()}
    if padding == "zeros":
        assert found.summary["units"] >= 1 and found.unit(int(found.found[0]))["layer"] == layer
        assert "learned-planted-zeros-units-gallery.png" in figures and "units-ablation" in page
    else:
        assert found.summary["units"] == 0 and "No padding-aware unit found" in text
        assert not any("gallery" in f for f in figures) and "units-ablation" not in page
    assert "Spearman 0 exactly" in text  # circular padding on a constant input: uniform features, no position
    for part in ("bias", "blind_spots", "units", "perturb", "readout", "readout_circular_constant"):
        saved = tmp_path / "data" / "learned" / f"planted-{padding}" / f"{part}.json"
        assert json.loads(saved.read_text())  # the numbers behind the page are beside it


def test_a_one_dimensional_model_gets_profiles_not_maps(tmp_path, small):
    from edgewise import nets

    net = nets.from_spec("conv5/c8, maxpool2, conv5/c8, gmp, fc10", (1, 64))
    w = sections.Writer(tmp_path)
    page = learned.section(w, [(net, (1, 64), "sound net")])
    figures = {p.name for p in (tmp_path / "figures").iterdir()}
    assert "learned-sound-net-bias-profiles.png" in figures and "learned-sound-net-bias-grid.png" not in figures
    assert "outermost samples" in page and {"learned-sound-net-perturb.png", "learned-sound-net-readout.png",
                                            "learned-sound-net-blind-spots.png"} <= figures


def test_probe_runs_for_trained_models_and_the_default_page_only(tmp_path, monkeypatch, small):
    ran = []
    monkeypatch.setattr(learned, "section", lambda w, models, *a, **k: ran.append(models) or "<p>probed</p>")
    fast = {"n_inits": 2, "remedy_inits": 0, "progress": False}
    plain = build("3*conv3", (1, 10, 10), out=tmp_path / "plain", **fast)
    assert plain.config["probe"] is False and ran == []
    assert "Run with --probe" in (tmp_path / "plain" / "index.html").read_text()
    trained = build("3*conv3", (1, 10, 10), out=tmp_path / "trained", trained_weights=True, **fast)
    assert trained.config["probe"] is True and [m[2] for m in ran[0]] == ["3*conv3"]
    forced = build("3*conv3", (1, 10, 10), out=tmp_path / "forced", probe=True, **fast)
    assert forced.config["probe"] is True and ran[1] == [(learned.DEFAULT, None, None)]
    assert "8. What trained networks learned about position" in forced.sections


def test_default_page_shows_the_probes_once_they_are_cached(tmp_path, monkeypatch, small):
    ran = []
    monkeypatch.setattr(learned, "section", lambda w, models, *a, **k: ran.append(models) or "<p>probed</p>")
    monkeypatch.setattr(builder, "DEFAULT_MODELS", (("3*conv3", (1, 10, 10)),))  # the default page, small
    fast = {"n_inits": 2, "remedy_inits": 0, "progress": False}
    out = tmp_path / "report"
    cold = build(out=out, **fast)  # a fresh folder: section 8 is not computed, and the page says how to get it
    assert cold.config["probe"] is False and ran == [] and not learned.cached_default(out)
    text = _text(out.joinpath("index.html").read_text())
    assert "Run with --probe" in text and "cached in this folder" in text
    probed = build(out=out, probe=True, **fast)
    assert probed.config["probe"] is True and ran == [[(learned.DEFAULT, None, None)]]
    assert learned.cached_default(out) and not learned.cached_default(out, seed=1)
    again = build(out=out, **fast)  # the same folder: now from the cache
    assert again.config["probe"] is True and len(ran) == 2 and "<p>probed</p>" in again.path.read_text()
    monkeypatch.setattr(learned, "SETTINGS", {**SMALL, "bias_n": 9})  # other settings' probes are not cached
    assert not learned.cached_default(out)
    assert builder._probe_by_default(True, [], None, tmp_path / "fresh", 0, train=True)  # --train: minutes anyway
    assert not builder._probe_by_default(True, [], None, tmp_path / "fresh", 0, train=False)


def test_cli_report_probe_flag(tmp_path, monkeypatch):
    from edgewise.cli import main

    seen = []
    monkeypatch.setattr(builder, "build", lambda *a, **k: seen.append(k["probe"]) or pytest.skip("only the flag"))
    with pytest.raises(pytest.skip.Exception):
        main(["report", "3*conv3", "--input", "1x10", "--out", str(tmp_path / "r"), "--no-probe"])
    assert seen == [False]
