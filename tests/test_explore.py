"""The interactive explorer (explore.html): its numbers are edgewise's, in a real browser, offline and fast.

The browser tests drive the page's own controls (the spec box, selects, number fields, the diagram's keys and
clicks) for random seeded configurations and compare every number the page shows with edgewise.pathways,
layer_counts, receptive_field and edgewise.theory on the same network built by nets.from_spec.
"""

import json
import random
import re
import statistics
import time
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from edgewise import layer_counts, nets, pathways, receptive_field, theory
from edgewise.cli import main
from edgewise.errors import EdgewiseError
from edgewise.report.explore import EDITOR_CONFIG, explore_config, explore_html, write_explore

needs_browser = pytest.mark.browser  # skipped without Chromium, a failure under EDGEWISE_REQUIRE_BROWSER=1 (CI)
N_CONFIGS = 32
SEED = 18


# ----------------------------------------------------------------------- fast, Python only

def test_spec_to_config():
    c = explore_config("2*conv3, maxpool2, conv5/s2/d2, avgpool3/s1, 3*conv3, gap", (1, 40), padding="reflect")
    assert c["input"] == [40] and c["padding"] == "reflect" and c["to"] == "all"
    assert [(r["kind"], r["k"], r["s"], r["d"], r["rep"]) for r in c["rows"]] == [
        ("conv", 3, 1, 1, 2), ("maxpool", 2, 2, 1, 1), ("conv", 5, 2, 2, 1), ("avgpool", 3, 1, 1, 1),
        ("conv", 3, 1, 1, 3), ("gap", 1, 1, 1, 1)]
    assert explore_config("conv3, conv3", (1, 8, 6), to=(2, 3))["rows"][0]["rep"] == 1  # written twice: two rows
    assert explore_config("4*conv3", (1, 8, 6), to=(2, 3))["input"] == [8, 6]
    assert explore_config("4*conv3", to="centre")["to"] == "center"
    assert explore_config(None) == EDITOR_CONFIG
    assert explore_config(None, (1, 12, 12), padding="full")["input"] == [12, 12]


@pytest.mark.parametrize("spec, words", [
    ("2*conv3, fc10", ["'fc10'", "not supported", "dense", "Leave 'fc10' out, e.g. '2*conv3'"]),
    ("conv3, res(conv3, conv3)", ["'res(conv3, conv3)'", "not supported", "residual"]),
    ("conv3/c4", ["'conv3/c4'", "one channel", "/c4"]),
    ("torchvision:resnet18", ["spec strings", "torchvision:resnet18"]),
    ("8*conv3", ["conv3 gets a 2 input, too small"]),  # nets' own message, input 1x10 valid
    ("conv3 conv3", ["unknown layer"]),
])
def test_unsupported_layers_are_refused_by_name(spec, words):
    with pytest.raises(EdgewiseError) as e:
        explore_config(spec, (1, 10), padding="valid")
    for w in words:
        assert w in str(e.value)


def test_bad_shapes_and_options_are_refused():
    for shape, word in (((1, 4, 4, 4), "C×L (1-D) or C×H×W (2-D)"), ((1, 5000), "at most 4096"), ((1, 2000, 8), "at most 1024")):
        with pytest.raises(EdgewiseError, match=re.escape(word)):
            explore_config("conv3", shape)
    with pytest.raises(EdgewiseError, match="unknown padding"):
        explore_config("conv3", padding="zero")
    with pytest.raises(EdgewiseError, match="2 coordinate"):
        explore_config("conv3", (1, 8, 8), to=3)


def test_page_is_one_self_contained_file():
    page = explore_html(explore_config("8*conv3", (1, 24), padding="valid"))
    assert page.startswith("<!DOCTYPE html>") and page.count("<script") == 3  # config, numbers, the code
    assert "<script src" not in page and "<link" not in page and "<img" not in page
    assert not re.search(r"https?:", page) and "//" not in page  # no reference outside the file, not even a comment
    assert not re.search(r"\b(fetch\s*\(|XMLHttpRequest|WebSocket|import\s*\()", page)
    assert "/*EW_" not in page  # every placeholder filled
    config = json.loads(re.search(r'<script type="application/json" id="ew-config">(.*?)</script>', page).group(1))
    assert config["rows"] == [{"kind": "conv", "k": 3, "s": 1, "d": 1, "rep": 8, "pad": None}]


def test_config_json_cannot_close_its_script_element():
    page = explore_html({"input": [8], "padding": "same", "to": "all", "note": "</script><b>",
                         "rows": [{"kind": "conv", "k": 3, "s": 1, "d": 1, "rep": 1, "pad": None}]})
    assert "</script><b>" not in page


def test_cli_writes_the_page(tmp_path, capsys):
    assert main(["explore", "8*conv3", "--input", "1x24", "--padding", "valid", "--out", str(tmp_path / "e")]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'e' / 'explore.html'}" in out
    page = (tmp_path / "e" / "explore.html").read_text()
    assert '"padding": "valid"' in page and '"rep": 8' in page
    assert main(["explore", "--json", "--out", str(tmp_path / "editor")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["config"] == EDITOR_CONFIG and Path(doc["path"]).is_file()
    assert main(["explore", "2*conv3, maxpool2", "--input", "1x16x12", "--to", "3,2", "--json",
                 "--out", str(tmp_path / "two")]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["to"] == [3, 2]


@pytest.mark.parametrize("argv, words", [
    (["explore", "2*conv3, fc10"], ["explore: error:", "'fc10' is not supported"]),
    (["explore", "res(conv3), conv3"], ["explore: error:", "not supported", "residual"]),
    (["explore", "8*conv3", "--input", "1x10", "--padding", "valid"], ["too small"]),
    (["explore", "conv3", "--to", "x"], ["--to 'x'"]),
])
def test_cli_refuses_bad_input_clearly(tmp_path, capsys, argv, words):
    assert main(argv + ["--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    for w in words:
        assert w in err
    assert "Traceback" not in err and not (tmp_path / "o").exists()


def test_cli_out_is_checked_like_the_other_commands(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert main(["explore", "--out", str(blocker)]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err
    assert main(["explore", "--out", str(blocker / "below")]) == 2
    assert "is a file, so no folder can be made there" in capsys.readouterr().err
    assert main(["explore", "--out", str(tmp_path / "new" / "deeper")]) == 0  # made on the way
    assert (tmp_path / "new" / "deeper" / "explore.html").is_file()


# ----------------------------------------------------------------------- the Python side of every comparison

def _item(row, rep=True):
    t = f"{row['rep']}*" if rep and row["rep"] > 1 else ""
    if row["kind"] in ("gap", "gmp"):
        return t + row["kind"]
    t += f"{row['kind']}{row['k']}"
    if row["kind"] == "conv":
        t += (f"/s{row['s']}" if row["s"] != 1 else "") + (f"/d{row['d']}" if row["d"] != 1 else "")
    elif row["s"] != row["k"]:
        t += f"/s{row['s']}"
    return t


def page_spec(cfg) -> str:
    """The spec as typed into the page: nets' grammar plus @mode for a layer's own padding."""
    return ", ".join(_item(r) + (f"@{r['pad']}" if r["pad"] else "") for r in cfg["rows"])


def build(cfg) -> nn.Module:
    """The network of a configuration, one channel per layer: nets.from_spec, or, where rows have their own
    padding, one from_spec net per layer, chained with the page's layer names (conv1, maxpool1, ...)."""
    shape = (1, *cfg["input"])
    if all(r["pad"] is None for r in cfg["rows"]):
        return nets.from_spec(", ".join(_item(r) for r in cfg["rows"]), shape, padding=cfg["padding"], width=1,
                              activation=None)
    layers, counters, x = OrderedDict(), {}, torch.zeros(1, *shape)
    for row in cfg["rows"]:
        for _ in range(row["rep"]):
            sub = nets.from_spec(_item(row, rep=False), tuple(x.shape[1:]), padding=row["pad"] or cfg["padding"],
                                 width=1, activation=None)
            for name, module in sub.named_children():
                kind = re.match(r"[a-z]+", name).group()
                counters[kind] = counters.get(kind, 0) + 1
                layers[f"{kind}{counters[kind]}"] = module
            try:
                with torch.no_grad():
                    x = sub(x)
            except RuntimeError as e:  # what tracing the spec net would report (PyTorch refuses wide reflections)
                raise EdgewiseError(str(e)) from e
    return nn.Sequential(layers)


def expected(cfg, unit_layer=None, unit_pos=None) -> dict:
    """Everything the page shows for ``cfg``, from the Python engines."""
    shape, net = (1, *cfg["input"]), build(cfg)
    to = cfg["to"] if isinstance(cfg["to"], str) else (cfg["to"][0] if len(cfg["to"]) == 1 else tuple(cfg["to"]))
    p = pathways(net, shape, to=to, exact=True)
    rf = receptive_field(net, shape)
    out = {"counts": p.counts, "rf": rf, "layers": layer_counts(net, shape, to=to, exact=True)}
    if unit_layer is not None:
        pos = unit_pos[0] if len(unit_pos) == 1 else tuple(unit_pos)
        out["unit_counts"] = pathways(net, shape, to=pos, layer=unit_layer, exact=True).counts
        out["box"], out["clipped"] = rf.box(unit_layer, pos), rf.clipped_box(unit_layer, pos)
    return out


def random_config(rng: random.Random) -> dict:
    dims = 1 if rng.random() < 0.7 else 2
    rows = []
    for _ in range(rng.randint(1, 4)):
        kind = rng.choices(["conv", "maxpool", "avgpool", "gap", "gmp"], [8, 1.5, 1.5, 0.4, 0.4])[0]
        if kind == "conv":
            rows.append({"kind": kind, "k": rng.randint(1, 6), "s": rng.choice([1, 1, 1, 2, 3]),
                         "d": rng.choice([1, 1, 2, 3]), "rep": rng.choice([1, 1, 2, 3]),
                         "pad": rng.choice([None] * 4 + list(nets.PADDINGS))})
        elif kind in ("maxpool", "avgpool"):
            k = rng.randint(2, 3)
            rows.append({"kind": kind, "k": k, "s": rng.choice([k, k, 1, 2]), "d": 1, "rep": 1, "pad": None})
        else:
            rows.append({"kind": kind, "k": 1, "s": 1, "d": 1, "rep": 1, "pad": None})
    size = [rng.randint(5, 40)] if dims == 1 else [rng.randint(4, 16), rng.randint(4, 16)]
    return {"input": size, "padding": rng.choice(list(nets.PADDINGS)), "rows": rows,
            "to": rng.choice(["all", "all", "center", "pos"])}


def python_accepts(cfg) -> bool:
    try:
        expected({**cfg, "to": "all"})
        return True
    except EdgewiseError:
        return False


# ----------------------------------------------------------------------- the browser

@pytest.fixture(scope="module")
def page(tmp_path_factory):
    return write_explore(tmp_path_factory.mktemp("explore"))  # the stack editor


@pytest.fixture(scope="module")
def driver(page):
    from edgewise.testing.browser import open_browser

    with open_browser(1400, 1000) as d:
        d.get(page.as_uri())
        yield d


def numbers(driver) -> dict:
    return json.loads(driver.execute_script("return document.getElementById('ew-numbers').textContent"))


def set_number(driver, element_id, value):
    el = driver.find_element("id", element_id)
    el.clear()
    el.send_keys(str(value))


def choose(driver, element_id, value):
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", element_id)).select_by_value(str(value))


def type_spec(driver, text):
    """Type a spec into the page's spec box and press Enter."""
    from selenium.webdriver.common.keys import Keys

    spec = driver.find_element("id", "spec")
    spec.clear()
    spec.send_keys(text, Keys.ENTER)


def drive(driver, cfg):
    """Set ``cfg`` through the page's controls, as a reader would."""
    choose(driver, "dims", len(cfg["input"]))
    set_number(driver, "n0", cfg["input"][0])
    if len(cfg["input"]) == 2:
        set_number(driver, "n1", cfg["input"][1])
    choose(driver, "padding", cfg["padding"])
    type_spec(driver, page_spec(cfg))
    choose(driver, "to", "pos" if isinstance(cfg["to"], list) else cfg["to"])
    if isinstance(cfg["to"], list):
        if len(cfg["to"]) == 2:
            set_number(driver, "to-y", cfg["to"][0])
        set_number(driver, "to-x", cfg["to"][-1])


def errors_and_requests(driver):
    from edgewise.testing.browser import console_errors

    requests = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).filter(u => !u.startsWith('data:'))")
    return console_errors(driver), requests


def check_against_python(got, cfg, unit_layer, unit_pos):
    want = expected(cfg, unit_layer, unit_pos)
    assert "error" not in got, got.get("error")
    if len(cfg["input"]) == 1:
        assert [int(v) for v in got["counts"]] == list(want["counts"])
        for name, values in got["layer_counts"].items():  # every neuron of the diagram
            assert [int(v) for v in values] == list(want["layers"][name]), name
    else:
        assert np.array_equal(np.array([[int(v) for v in row] for row in got["counts"]], dtype=object), want["counts"])
    for layer in got["rf"]:
        lf = want["rf"][layer["name"]]
        assert (tuple(layer["size"]), tuple(layer["jump"]), tuple(layer["start"])) == (lf.size, lf.jump, lf.start)
    factors = [[int(v) for v in axis] for axis in got["unit"]["axis_counts"]]
    unit = np.array(factors[0], dtype=object) if len(factors) == 1 else np.multiply.outer(
        np.array(factors[0], dtype=object), np.array(factors[1], dtype=object))
    assert np.array_equal(unit, want["unit_counts"])
    assert [tuple(b) for b in got["unit"]["box"]] == [tuple(b) for b in want["box"]]
    assert [tuple(b) for b in got["unit"]["clipped"]] == [tuple(b) for b in want["clipped"]]
    summary = want_summary(want["counts"])
    for key in ("center_edge_ratio", "center_corner_ratio"):
        assert (Fraction(got["summary"][key]) if got["summary"][key] else None) == summary[key], key


def want_summary(counts) -> dict:
    from edgewise.maps import anchor_points

    points = anchor_points(counts.shape)
    mean = {k: Fraction(sum(int(counts[p]) for p in v), len(v)) for k, v in points.items()}
    return {f"center_{k}_ratio": (mean["center"] / mean[k] if mean[k] else None) for k in ("edge", "corner")}


@needs_browser
def test_random_configurations_match_the_engines(driver):
    """≥ 30 seeded random stacks (1-D and 2-D, every padding, per-layer padding, strides, dilations, pools,
    global pools, to=all/center/position, a random clicked unit), each set through the page's controls."""
    rng = random.Random(SEED)
    checked = refused = 0
    while checked < N_CONFIGS:
        cfg = random_config(rng)
        drive(driver, cfg)
        got = numbers(driver)
        if not python_accepts(cfg):  # the page refuses what edgewise.nets / PyTorch refuse
            assert "error" in got, (page_spec(cfg), cfg)
            refused += 1
            continue
        assert "error" not in got, (page_spec(cfg), cfg, got.get("error"))
        top = [s[-1] for s in got["sizes"]]
        if cfg["to"] == "pos":
            cfg["to"] = [rng.randrange(n) for n in top]
            if len(top) == 2:
                set_number(driver, "to-y", cfg["to"][0])
            set_number(driver, "to-x", cfg["to"][-1])
        level = rng.randint(1, len(got["layers"]))
        choose(driver, "unit-level", level)
        pos = [rng.randrange(s[level]) for s in got["sizes"]]
        if len(pos) == 2:
            set_number(driver, "unit-y", pos[0])
        set_number(driver, "unit-x", pos[-1])
        got = numbers(driver)
        assert got["to"] == cfg["to"] and got["unit"]["level"] == level and got["unit"]["pos"] == pos
        check_against_python(got, cfg, got["layers"][level - 1], pos)
        checked += 1
    errors, requests = errors_and_requests(driver)
    assert errors == [] and requests == []
    assert refused >= 1  # the refusals were exercised too


@needs_browser
def test_visible_text_shows_the_same_numbers(driver):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    cfg = {"input": [9], "padding": "valid", "rows": [{"kind": "conv", "k": 3, "s": 1, "d": 1, "rep": 4, "pad": None}],
           "to": "all"}
    drive(driver, cfg)
    summary = driver.find_element(By.ID, "summary").text
    assert "centre: 19 paths" in summary and "centre/edge = 19 (exact)" in summary
    driver.find_element(By.CSS_SELECTOR, "#exact summary").click()
    # the box is filled by its 'toggle' event, which the browser fires as a task after the click: wait for it
    text = WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "exact-text").text)
    assert "paths from each input position: 1 4 10 16 19 16 10 4 1" in text
    assert [int(v) for v in numbers(driver)["counts"]] == list(expected(cfg)["counts"]) == [1, 4, 10, 16, 19, 16, 10, 4, 1]
    assert driver.find_element(By.ID, "diagram-title").text == "Paths to the output of 4*conv3"
    rf = driver.find_element(By.ID, "rf-table").text
    assert "conv4 1 9 1 4" in rf  # output size 1, field 9, jump 1, start 4
    driver.find_element(By.CSS_SELECTOR, "#exact summary").click()
    # a reduced fraction where the ratio is not whole; a 2-D map with no path to the border says which is missing
    drive(driver, {"input": [8], "padding": "same", "rows": [{"kind": "conv", "k": 3, "s": 1, "d": 1, "rep": 2,
                                                              "pad": None}], "to": "all"})
    ratio = Fraction(pathways(nets.from_spec("2*conv3", (1, 8)), (1, 8)).summary["center_edge_ratio"]).limit_denominator()
    assert f"(exactly {ratio.numerator}/{ratio.denominator})" in driver.find_element(By.ID, "summary").text
    drive(driver, {"input": [24, 24], "padding": "same", "rows": [{"kind": "conv", "k": 3, "s": 1, "d": 1, "rep": 2,
                                                                  "pad": None}], "to": "center"})
    summary = driver.find_element(By.ID, "summary").text
    assert "centre/edge = undefined (no path reaches the edges)" in summary
    assert "centre/corner = undefined (no path reaches the corners)" in summary


@needs_browser
def test_depth_curve_is_theory(driver):
    """The ratio-vs-depth panel: exact values = edgewise.theory.ratio, closed forms = theory.depth_law."""
    cases = [("valid", 3, 1, 24), ("same", 3, 1, 20), ("same", 5, 2, 23), ("same", 4, 1, 16), ("reflect", 3, 1, 17),
             ("reflect", 5, 2, 30), ("full", 3, 1, 10), ("circular", 5, 1, 12), ("replicate", 5, 1, 14),
             ("symmetric", 4, 1, 11), ("same", 7, 1, 64)]
    for padding, k, d, n in cases:
        cfg = {"input": [n], "padding": padding, "to": "all",
               "rows": [{"kind": "conv", "k": k, "s": 1, "d": d, "rep": 2, "pad": None}]}
        drive(driver, cfg)
        got = numbers(driver)["depth"]
        assert (got["padding"], got["k"], got["d"], got["n"]) == (padding, k, d, n)
        for L, text in enumerate(got["exact"], start=1):
            try:
                want = theory.ratio(padding, k, n, L, d)
            except EdgewiseError:  # the stack has no output, or no path reaches an edge
                want = None
            assert (Fraction(text) if text else None) == want, (padding, k, d, n, L)
        law = theory.depth_law(padding, k, n, d)
        assert got["law_kind"] == law.kind
        if law.kind == "numeric":  # (the page does not work the deep limit out; it names the command that does)
            assert f"edgewise scaling conv{k}{'' if d == 1 else f'/d{d}'} --padding {padding} --input 1x{n}" \
                in got["law_formula"], got
        else:
            curve = law.curve(np.arange(1, 65))
            page_curve = np.array([np.nan if v is None else v for v in got["law"]])
            assert np.allclose(page_curve, curve, rtol=1e-9, equal_nan=True), (padding, k, d, n)
    assert errors_and_requests(driver) == ([], [])


def test_closed_form_constants_in_the_page_are_theory():
    """C_k and the same-padding limit as the page computes them (its JS, run by the browser test above) agree with
    edgewise.theory to 1e-9; here, the Python values the browser test compares against are finite and sane."""
    assert theory.survival_constant(3) == pytest.approx(3 ** 0.5)
    assert theory.same_ratio_limit(3, 20) == pytest.approx(np.sin(np.pi * 10 / 21) / np.sin(np.pi / 21))


@needs_browser
def test_update_under_50_ms_for_depth_64_and_length_512(driver):
    """Timed in the page (performance.now() around compute + redraw + numbers), on the control changes a reader makes."""
    cfg = {"input": [512], "padding": "same", "to": "all",
           "rows": [{"kind": "conv", "k": 3, "s": 1, "d": 1, "rep": 64, "pad": None}]}
    drive(driver, cfg)
    got = numbers(driver)
    assert got["sizes"] == [[512] * 65] and len(got["layers"]) == 64
    times, phases = [], []

    def timed():
        el = driver.find_element("id", "ew-numbers")
        times.append(float(el.get_attribute("data-ms")))
        phases.append(el.get_attribute("data-phases"))

    for padding in ["valid", "same", "full", "circular", "reflect", "replicate", "symmetric"] * 2:
        choose(driver, "padding", padding)
        timed()
    from selenium.webdriver.common.keys import Keys

    diagram = driver.find_element("id", "diagram")
    diagram.click()
    for key in [Keys.ARROW_LEFT, Keys.ARROW_DOWN, Keys.ARROW_RIGHT, Keys.ARROW_UP] * 2:
        diagram.send_keys(key)
        timed()
    print(f"update times (ms) at depth 64, length 512: median {statistics.median(times):.1f}, max {max(times):.1f}")
    print("slowest:", phases[times.index(max(times))])
    assert statistics.median(times) < 50
    assert sorted(times)[int(0.8 * len(times))] < 50  # not only the median: four updates in five


@needs_browser
def test_hash_round_trip(driver, page):
    cfg = {"input": [12, 10], "padding": "reflect", "to": "center",
           "rows": [{"kind": "conv", "k": 3, "s": 1, "d": 2, "rep": 2, "pad": "symmetric"},
                    {"kind": "maxpool", "k": 2, "s": 2, "d": 1, "rep": 1, "pad": None},
                    {"kind": "conv", "k": 4, "s": 1, "d": 1, "rep": 1, "pad": None}]}
    drive(driver, cfg)
    choose(driver, "unit-level", 2)
    set_number(driver, "unit-x", 3)
    before = numbers(driver)
    deadline = time.monotonic() + 5  # the address follows the view a moment after the last change
    while not driver.current_url.endswith(",3") and time.monotonic() < deadline:
        time.sleep(0.05)
    url = driver.current_url
    assert "#spec=" in url and "unit=2:" in url and url.endswith(",3") and "padding=reflect" in url
    driver.get("about:blank")
    driver.get(url)  # a fresh load of the shared address
    after = numbers(driver)
    assert after == before
    assert driver.find_element("id", "padding").get_attribute("value") == "reflect"
    assert driver.find_element("id", "spec").get_attribute("value") == "2*conv3/d2@symmetric, maxpool2, conv4"
    check_against_python(after, cfg, after["unit"]["layer"], after["unit"]["pos"])
    driver.get(page.as_uri())  # back to the editor, for the tests that follow


@needs_browser
def test_keyboard_and_mouse(driver):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    cfg = {"input": [15], "padding": "same", "to": "all",
           "rows": [{"kind": "conv", "k": 3, "s": 1, "d": 1, "rep": 3, "pad": None}]}
    drive(driver, cfg)
    # keyboard: the repeat count of the first layer, one arrow key up
    rep = driver.find_element("css selector", "#layers li input[aria-label='layer 1 repeat']")
    rep.click()
    rep.send_keys(Keys.ARROW_UP)
    got = numbers(driver)
    assert got["spec"] == "4*conv3" and len(got["layers"]) == 4
    cfg["rows"][0]["rep"] = 4
    # keyboard: Tab reaches the diagram, arrows move the clicked unit (left twice, down a layer)
    diagram = driver.find_element("id", "diagram")
    driver.find_element("css selector", "#rf-table tr[data-level='4']").click()  # conv4's centre unit
    driver.execute_script("arguments[0].focus()", diagram)
    start = numbers(driver)["unit"]
    assert (start["level"], start["pos"]) == (4, [7])
    for key in (Keys.ARROW_LEFT, Keys.ARROW_LEFT, Keys.ARROW_DOWN, Keys.HOME, Keys.ARROW_RIGHT):
        diagram.send_keys(key)
    got = numbers(driver)
    assert (got["unit"]["level"], got["unit"]["pos"]) == (3, [1])
    check_against_python(got, cfg, "conv3", [1])
    # global keys outside a field: + adds a conv, - removes it, p cycles the padding
    diagram.send_keys("+")
    assert numbers(driver)["spec"] == "4*conv3, conv3"
    diagram.send_keys("-")
    diagram.send_keys("p")
    assert numbers(driver)["padding"] == "full" and numbers(driver)["spec"] == "4*conv3"
    choose(driver, "padding", "same")
    # mouse: click neuron 11 of conv2
    point = driver.execute_script("return window.edgewiseExplorer.neuronAt(2, 11)")
    ActionChains(driver).move_to_element_with_offset(diagram, 0, 0).perform()  # warm the pointer
    size = diagram.size
    ActionChains(driver).move_to_element_with_offset(
        diagram, point["cx"] - size["width"] / 2, point["cy"] - size["height"] / 2).click().perform()
    got = numbers(driver)
    assert (got["unit"]["layer"], got["unit"]["pos"]) == ("conv2", [11])
    check_against_python(got, cfg, "conv2", [11])
    # the table of layers: a click picks that layer's centre unit
    driver.find_element("css selector", "#rf-table tr[data-level='1']").click()
    assert numbers(driver)["unit"]["layer"] == "conv1"
    assert errors_and_requests(driver) == ([], [])


@needs_browser
def test_page_opened_on_a_model_and_bad_specs(tmp_path):
    """A page written for a spec opens on it; a spec typed into the page that it cannot draw is refused in words,
    without a console error, and the last good view stays."""
    from edgewise.testing.browser import open_browser

    path = write_explore(tmp_path, "2*conv3, maxpool2, conv5/s2", (1, 20, 16), padding="replicate", to=(1, 2))
    with open_browser(1300, 900) as d:
        d.get(path.as_uri())
        got = numbers(d)
        assert (got["spec"], got["padding"], got["input"], got["to"]) == ("2*conv3, maxpool2, conv5/s2", "replicate",
                                                                          [20, 16], [1, 2])
        cfg = explore_config("2*conv3, maxpool2, conv5/s2", (1, 20, 16), padding="replicate", to=(1, 2))
        check_against_python(got, {**cfg, "to": [1, 2]}, got["unit"]["layer"], got["unit"]["pos"])
        for bad, words in (("conv3, fc10", "'fc10' (a dense layer) is not supported"),
                           ("res(conv3)", "is not supported by the explorer"),
                           ("conv3/c8", "one channel per layer"), ("conv3@zero", "unknown padding 'zero'")):
            type_spec(d, bad)
            assert words in d.find_element("id", "spec-error").text
            assert numbers(d)["spec"] == "2*conv3, maxpool2, conv5/s2"
        type_spec(d, "12*conv5")  # replicate padding keeps the size: any depth fits
        assert "error" not in numbers(d)
        choose(d, "padding", "valid")  # now it is too small: the page says so, as edgewise.nets does
        got = numbers(d)
        assert "too small" in got["error"] and d.find_element("id", "error").is_displayed()
        assert errors_and_requests(d) == ([], [])


@needs_browser
def test_screenshots_of_valid_same_full(driver, page):
    """The README's three views (8*conv3 on 17 inputs: valid, same, full), taken by scripts/explore_screenshots.py,
    kept in artifacts/ (CI's test artefact); the numbers behind each are the engine's."""
    import importlib.util

    script = Path(__file__).resolve().parent.parent / "scripts" / "explore_screenshots.py"
    spec = importlib.util.spec_from_file_location("explore_screenshots", script)
    shots = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shots)
    artifacts = Path(__file__).resolve().parent.parent / "artifacts"
    for padding in shots.PADDINGS:
        path = shots.shoot(driver, page, padding, artifacts / f"explore-{padding}.png")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        cfg = {"input": [shots.LENGTH], "padding": padding, "to": "all",
               "rows": [{"kind": "conv", "k": 3, "s": 1, "d": 1, "rep": 8, "pad": None}]}
        got = numbers(driver)
        assert got["spec"] == shots.SPEC and got["padding"] == padding
        check_against_python(got, cfg, got["unit"]["layer"], got["unit"]["pos"])
    driver.get(page.as_uri())
