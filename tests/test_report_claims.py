"""Every sentence on the report is true: each number of the verdict is read back from the saved data, each
qualitative word (uniform, never read, over-corrects, flat, the depth laws) is checked against the saved maps,
and the checker itself is shown to catch the wordings and maps that were once wrong."""

import html
import math
import json
import re
import shutil

import numpy as np
import pytest

from edgewise import nets
from edgewise.facts import correction, spread, unread_where
from edgewise.report.builder import build
from edgewise.report.verdict import render_trained
from edgewise.testing.claims import check_captions, check_report, check_trained

QUESTION = "conv64/s4, conv64/s4"
VALID = nets.from_spec("6*conv3", (1, 32), padding="valid")
VALID.reference = "6*conv3 valid"
HEAD = "conv3, maxpool2, conv3, gap, fc4"  # global pooling and a dense head
MODELS = [QUESTION, nets.DEFAULT_SPEC, "torchvision:resnet18", VALID, HEAD]
SHAPES = [(1, 256), (1, 32, 32), (3, 32, 32), (1, 32), (1, 16, 16)]
SLUG = "conv64-s4-conv64-s4"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("claims")
    build(MODELS, SHAPES, out=out, n_inits=4, progress=False)
    return out


def copy(page, tmp_path):
    return shutil.copytree(page, tmp_path / "copy")


def verdict_block(out, slug):
    text = (out / "index.html").read_text()
    start = text.index(f'href="data/{slug}/verdict.json"')
    return text[text.rindex("<h3>", 0, start):text.index("</ol>", start)]


def test_every_claim_on_the_page_holds(page):
    assert check_report(page) == []


def test_the_page_quotes_the_numbers_it_says(page):
    text = (page / "index.html").read_text()
    assert "RuntimeError" not in text and "Traceback" not in text
    assert "less than its 64-tap kernel" in text  # the misfit in one plain sentence
    assert "σ<sup>2L</sup>" in text and "^{" not in text
    f = json.loads((page / "data" / SLUG / "verdict.json").read_text())
    # the 1-D net: symmetric padding is not uniform (max/min 1.21), replicate over-corrects 21.5×, the
    # non-overlapping remedy leaves the last 31 samples unread
    assert f["q1"]["laws"]["symmetric"]["uniform"] is False
    assert f["q1"]["laws"]["symmetric"]["max_over_min"] == pytest.approx(1.2112, rel=1e-3)
    assert 1 / f["q5"]["variants"]["replicate"]["ratio"] == pytest.approx(21.49, rel=1e-3)
    assert f["q5"]["variants"]["nonoverlapping"]["unread"] == 31
    assert f["q5"]["best"] == "circular" and f["q5"]["best_uniform"]
    assert "replicate" in f["q5"]["over_correct"] and "valid" in f["q5"]["misfits"]


def test_one_value_per_quantity(page):
    """The original's sensitivity ratio in the remedies table is the verdict's (same initialisations)."""
    f = json.loads((page / "data" / SLUG / "verdict.json").read_text())
    rows = {r["name"]: r for r in json.loads((page / "data" / SLUG / "remedies.json").read_text())["rows"]}
    assert rows["original"]["sensitivity_center_edge_ratio"] == pytest.approx(f["q4"]["sensitivity_ratio"])
    assert "same" not in rows  # the model's own padding is the original, not a second row


def test_one_d_words_for_a_one_d_model(page):
    block = re.sub(r"<[^>]+>", "", verdict_block(page, SLUG))
    assert "samples" in block and "start and end of the signal" in block and "border-1d" in block
    assert not re.search(r"\bpx\b|\bimage\b|\bcorner\b|\bradial\b", block)
    two_d = re.sub(r"<[^>]+>", "", verdict_block(page, "2-conv3-maxpool2-2-conv3-maxpool2-3-conv3"))
    assert " px" in two_d and "signal" not in two_d


def test_pooling_and_dense_layers_answered_from_the_model(page):
    vgg = json.loads((page / "data" / "2-conv3-maxpool2-2-conv3-maxpool2-3-conv3" / "verdict.json").read_text())
    assert [p["layer"] for p in vgg["q2"]["pools"]] == ["maxpool1", "maxpool2"]
    head = json.loads((page / "data" / "conv3-maxpool2-conv3-gap-fc4" / "verdict.json").read_text())
    assert head["q3"]["global_layers"] == ["gap1"]  # the fc reads one position per channel: gap already mixed
    assert head["q3"]["before_global"] == pytest.approx(head["q3"]["output"])  # global layers keep the ratio
    said = re.sub(r"<[^>]+>", "", verdict_block(page, "conv3-maxpool2-conv3-gap-fc4"))
    assert ("gap1 connects every input unit to every output unit, so it adds the same number of paths to each "
            "position; it does not undo the imbalance built before it (the ratio is") in said
    resnet = json.loads((page / "data" / "torchvision-resnet18" / "verdict.json").read_text())
    assert resnet["q3"]["global_layers"] == []  # at 32×32 layer4 is already 1×1: nothing left to pool
    valid = json.loads((page / "data" / "6-conv3-valid" / "verdict.json").read_text())
    assert valid["q1"]["padding"] == "valid" and valid["q1"]["laws"]["valid"]["kind"] == "exponential"


def test_the_spread_of_the_centre_units_paths_is_set_against_an_even_spread(page):
    """"only" where the paths to the centre unit spread less than an even spread over what it reads, with both
    numbers from verdict.json (the default net: 40-px fields on 32 px, so all 32 are read)."""
    f = json.loads((page / "data" / "2-conv3-maxpool2-2-conv3-maxpool2-3-conv3" / "verdict.json").read_text())
    assert f["q4"]["even_std"] == pytest.approx([(31 * 33 / 12) ** 0.5] * 2)
    assert all(s < e for s, e in zip(f["q4"]["erf_moment_std"], f["q4"]["even_std"]))
    block = re.sub(r"<[^>]+>", "", verdict_block(page, "2-conv3-maxpool2-2-conv3-maxpool2-3-conv3"))
    assert "but the paths to the centre unit spread with a standard deviation of only 6.1 × 6.1 px" in block
    assert "against 9.2 × 9.2 px for an even spread over the positions it reads" in block


@pytest.mark.parametrize("low, peak, final, said", [
    (1.0, 1.0, 1.0, "its ratio is 1× after every layer"),
    (1.0, 3.33, 3.33, "the per-layer curve shows where its ratio grows, to 3.33× after the last window"),
    (1.0, 5.0, 2.0, "the per-layer curve shows its ratio reach 5× and end at 2× after the last window"),
])
def test_a_model_without_pooling_is_described_by_its_per_layer_ratios(page, low, peak, final, said):
    from edgewise.report.verdict import render

    f = json.loads((page / "data" / SLUG / "verdict.json").read_text())
    f["q2"].update(low=low, peak=peak, final=final)
    assert said in re.sub(r"<[^>]+>", "", render(f))


def test_most_uneven_names_every_variant_at_the_largest_spread(page):
    """The sentence names every centre-heavy variant at the largest max/min in the saved rows (not the first of
    them), and says "as the original" exactly when the original's is that large."""
    data = page / "data" / "torchvision-resnet18"
    rows = json.loads((data / "remedies.json").read_text())["rows"]
    fits = [r for r in rows if "error" not in r and r["name"] != "original"]
    heavy = [r for r in fits if correction(r["center_corner_ratio"], r) == "centre-heavy"]
    most = max(r["max_over_min"] for r in heavy)
    tops = {r["name"] for r in heavy if r["max_over_min"] == pytest.approx(most, rel=1e-9)}
    text = re.sub(r"<[^>]+>", "", (page / "index.html").read_text())
    said = re.search(r"Pathway maps of torchvision:resnet18 after each remedy\..*?Most uneven: ([^(]+) \(max/min "
                     r"[^,)]+(, as the original)?\)", text, re.S)
    assert said and set(re.split(r", | and ", said.group(1).strip())) == tops
    assert bool(said.group(2)) == (rows[0]["max_over_min"] == pytest.approx(most, rel=1e-9))


@pytest.mark.parametrize("spreads, said", [
    ({"same": 385.0, "partial": 385.0, "reflect": 303.0},
     "Most uneven: same and partial (max/min 385×, as the original)."),
    ({"same": 385.0, "coordconv": 385.0, "reflect": 586.0}, "Most uneven: reflect (max/min 586×)."),
    ({"same": 385.0, "partial": 385.0, "coordconv": 385.0}, "Most uneven: same, partial and coordconv (max/min 385×, "
                                                             "as the original)."),
])
def test_most_uneven_ties(spreads, said):
    from types import SimpleNamespace

    from edgewise.report.sections import spread_sentence

    def row(name, spread):
        return {"name": name, "center_corner_ratio": 66.0, "max_over_min": spread, "unread": 0, "uniform": False}

    subject = SimpleNamespace(ev=SimpleNamespace(shape=(3, 64, 64)), ratio=lambda r: r["center_corner_ratio"])
    rows = [row("original", 385.0)] + [row(n, v) for n, v in spreads.items()]
    assert spread_sentence(subject, rows).endswith(said)


# ----------------------------------------------------------------------- the checker catches what was wrong

def test_old_wording_uniform_from_a_ratio_fails(page):
    old = "Every position gets the same count with full, circular, symmetric."
    problems = check_captions(old + " nonoverlapping never reads 31", page / "data" / SLUG)
    assert any("symmetric uniform" in p for p in problems)


def test_fabricated_most_uneven_fails(page):
    from edgewise.report.tables import ratio_text

    data = page / "data" / "torchvision-resnet18"
    original = json.loads((data / "remedies.json").read_text())["rows"][0]["max_over_min"]
    problems = check_captions(f"Most uneven: circular and same (max/min {ratio_text(original)}, as the original).",
                              data)
    assert any("circular is most uneven" in p for p in problems)
    assert any("circular is as uneven as the original" in p for p in problems)
    assert not any(" same " in p for p in problems)  # (same is the original: both claims hold for it)


def test_unread_positions_not_mentioned_fails(page):
    """'nonoverlapping 2×' with no word about its 31 unread samples."""
    problems = check_captions("Pathway maps after each remedy. Uniform (max = min over all positions): full, "
                              "circular.", page / "data" / SLUG)
    assert any("nonoverlapping leaves positions unread" in p for p in problems)


def test_an_unread_end_is_said_beside_the_ratio(page, tmp_path):
    """nonoverlapping never reads its last 31 samples, the last end among them: its centre/edge ratio divides
    the mean of both ends, a zero included, which the table's note says; a wrong or missing note fails."""
    text = (page / "index.html").read_text()
    note = ("nonoverlapping: 1 of its 2 edges has no path; its centre/edge ratios compare the centre with the mean "
            "of the 2 edges, zeros included.")
    assert note in text
    out = copy(page, tmp_path)
    (out / "index.html").write_text(text.replace("nonoverlapping: 1 of its 2 edges has", "nonoverlapping: 2 of its "
                                                 "2 edges have"))
    assert any("nonoverlapping's centre unread=False and 2 corners unread" in p for p in check_report(out))
    (out / "index.html").write_text(text.replace(note, ""))
    assert any("nonoverlapping's centre or a corner has no path, but no note says so" in p
               for p in check_report(out))


@pytest.mark.parametrize("stride, said", [
    (4, ["original: 3 of its 4 corners have no path; its centre/corner ratio compares the centre with the mean of "
         "the 4 corners, zeros included."]),
    (2, []),  # 30 px at stride 2: every pixel is read
])
def test_unread_corners_are_noted_from_the_map(stride, said):
    """A stride-4 stem on 30 px (ViT's patchify convolution in small) never reads the last two rows and columns,
    so three corners have no path; the note counts them from the map, and a stem that reads all gets none."""
    from torch import nn

    from edgewise.remedies import compare
    from edgewise.report.tables import remedy_rows

    model = nn.Sequential(nn.Conv2d(1, 4, 4, stride=stride), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))
    comp = compare(model, (1, 30, 30), ["same"], n_inits=0)
    original = comp.rows[0]
    zero = ~np.isfinite(comp.maps["original"])
    assert original["unread_anchors"]["corner"] == sum(zero[i, j] for i in (0, 29) for j in (0, 29))
    notes = remedy_rows(comp).notes
    assert [n for n in notes if "have no path" in n or "has no path" in n] == said


def test_fabricated_maps_and_numbers_fail(page, tmp_path):
    out = copy(page, tmp_path)
    data = out / "data" / SLUG
    # a circular map that varies: the verdict's "uniform" claim must fail
    m = np.load(data / "remedies.log10_circular.npy")
    m[0] += 0.5
    np.save(data / "remedies.log10_circular.npy", m)
    # a non-overlapping map that reads everything: "never reads 31" must fail
    np.save(data / "remedies.log10_nonoverlapping.npy", np.zeros_like(np.load(data / "remedies.log10_original.npy")))
    # a number the page shows that the data no longer says
    f = json.loads((data / "verdict.json").read_text())
    f["q1"]["ratio"] *= 2
    (data / "verdict.json").write_text(json.dumps(f))
    problems = check_report(out)
    assert any("circular is uniform" in p for p in problems)
    assert any("nonoverlapping never reads" in p for p in problems)
    assert any("q1.ratio" in p for p in problems)


def test_fabricated_pool_and_law_claims_fail(page, tmp_path):
    out = copy(page, tmp_path)
    report = json.loads((out / "report.json").read_text())
    depth = report["numbers"]["depth"][nets.DEFAULT_SPEC]
    depth["layer_ratios"][depth["layers"].index("maxpool1")] *= 1.5
    (out / "report.json").write_text(json.dumps(report))
    text = (out / "index.html").read_text()
    text = text.replace('data-claim="law:sqrt-then-saturating" data-of="same"',
                        'data-claim="law:exponential" data-of="same"', 1)
    (out / "index.html").write_text(text)
    problems = check_report(out)
    assert any("pool maxpool1 is flat" in p for p in problems)
    assert any("same law is exponential" in p for p in problems)


def test_a_numeric_law_says_its_deep_limit_and_a_wrong_one_fails(page, tmp_path):
    """The question's 64-tap kernel has no closed form for same, reflect, replicate or symmetric padding; each
    law gives the limit its ratio tends to (the Perron vector of one layer's matrix), which the checker works
    out apart from the theory (numpy's eigenvector) and a fabricated number fails."""
    block = html.unescape(re.sub(r"<[^>]+>", "", verdict_block(page, SLUG)))
    for padding, limit in (("same", "6.41"), ("reflect", "1.89"), ("replicate", "0.0695"), ("symmetric", "0.946")):
        assert f"{padding}: no closed form (exact counts only), tending to {limit} as L → ∞" in block, padding
    assert "same: no closed form (exact counts only), tending to 6.41 as L → ∞ (the Perron vector of one " \
           "layer's matrix); measured over L = 1…64: fit: bounded (×" in block
    assert "bounded →" not in block  # (a fit's last ratio is not where the ratio goes: theory says where)
    out = copy(page, tmp_path)
    text = (out / "index.html").read_text()
    (out / "index.html").write_text(text.replace("tending to 6.41 as L", "tending to 7.41 as L", 1))
    assert any("same stack's ratio tends to 7.41, its deep limit is 6.40749" in p
               for p in check_report(out))


def test_trained_answer_quotes_the_trained_numbers():
    numbers = {"after_training": {"border-digits:same": {"trained": 277.5, "random": 3.12, "paths": 11.39}},
               "experiments": {"border-digits": {"contrast": {"splits": ["corner", "center"], "table": {
                   "same": {"mean": -0.269}, "full": {"mean": -0.003}, "circular": {"mean": 0.0}}}}}}
    text = render_trained(numbers)
    assert "278×" in text and "circular" in text and check_trained(text, numbers) == []
    numbers["experiments"]["border-digits"]["contrast"]["table"]["same"]["mean"] = -0.5  # the data says otherwise
    assert any("-27" in p for p in check_trained(text, numbers))
    assert "Not measured in this run" in render_trained({}) and "--train" in render_trained({})


def test_the_trained_answer_says_which_part_of_the_gap_the_explanation_finds():
    """With --train, section 8 splits the after-training gap; the verdict says which part is larger, from it."""
    numbers = {"after_training": {"border-digits:same": {"trained": 277.5, "random": 3.12, "paths": 11.39}},
               "learned": {"border-digits:ratio": {"rows": [{"weights": "init", "probe": "mix", "grad_anchor": 56.2}]}}}
    text = render_trained(numbers)
    assert "random weights on the same digits already give 56.2×" in text
    assert "the probe digits (not noise) account for more of that gap than training" in text  # 18× against 4.9×
    numbers["learned"]["border-digits:ratio"]["rows"][0]["grad_anchor"] = 6.0  # now training carries it
    assert "training accounts for more of that gap than the probe digits" in render_trained(numbers)
    del numbers["learned"]
    assert "random weights on the same digits" not in render_trained(numbers)  # no explanation, no clause


# ----------------------------------------------------------------------- the facts layer

def test_spread_uniform_means_max_equals_min():
    assert spread([4, 4, 4])["uniform"] and spread([4, 4, 4])["max_over_min"] == 1.0
    s = spread([3, 4, 4, 3])
    assert not s["uniform"] and s["max_over_min"] == pytest.approx(4 / 3)
    s = spread(np.array([2.0, 2.0, 0.0, 0.0]))
    assert s["unread"] == 2 and not s["uniform"] and s["unread_where"] == "the last 2 samples, 2–3"
    big = [10**40, 10**40 + 1]  # exact integers: one path apart is not uniform
    assert not spread(np.array(big, dtype=object), exact=True)["uniform"]
    assert correction(1.0, spread([1, 2, 1])) == "balanced at the anchors"
    assert correction(0.5, spread([2, 1, 2])) == "over-corrects"


def test_unread_where_in_two_dimensions():
    mask = np.zeros((4, 5), dtype=bool)
    mask[3] = True
    mask[:, 4] = True
    assert unread_where(mask) == "rows 3 and columns 4"
    assert unread_where(np.zeros(3, dtype=bool)) == "nowhere"


def test_zero_over_zero_is_no_ratio_everywhere():
    """A map zero at the centre and at the border has no centre/border ratio: "0/0" in tables, panel titles and
    the CLI alike (a panel title once printed "centre/corner 0" for it)."""
    import math

    from edgewise.report._format import fmt_ratio
    from edgewise.report.tables import ratio_text

    assert fmt_ratio(math.nan) == ratio_text(math.nan) == "0/0"
    assert (fmt_ratio(math.inf), fmt_ratio(-math.inf), fmt_ratio(0.0)) == ("∞", "0", "1×")


def test_a_ratio_that_rounds_to_one_but_is_not_one_shows_the_digits_that_tell_it_apart():
    """timm's EfficientNet-B0 under `nonoverlapping` at 64 px has two distinct exact counts, 4e-8 apart: the answer
    printed "max/min 1× over all positions" for a map it did not call uniform. Now 1× means equal (within
    LOG10_TIE, the float counts' tie)."""
    import math

    from edgewise.facts import spread
    from edgewise.report._format import LOG10_TIE, fmt_ratio
    from edgewise.report.tables import ratio_text

    s = spread(np.array([10**20, 10**20 + 4 * 10**12, 10**20], dtype=object))
    assert not s["uniform"] and ratio_text(s["max_over_min"]) == "1.00000004×"
    assert ratio_text(1.0004) == "1.0004×" and ratio_text(0.9996) == "0.9996×" and ratio_text(1.004) == "1.004×"
    assert fmt_ratio(0.5 * LOG10_TIE) == "1×" and fmt_ratio(math.log10(1.25)) == "1.25×"
    assert spread(np.array([7, 7, 7]))["uniform"] and ratio_text(spread(np.array([7, 7]))["max_over_min"]) == "1×"


def test_rows_alike_share_one_note_in_rank_order():
    from edgewise.report.tables import unread_anchor_notes

    rows = [{"name": "original", "unread_anchors": {"center": 0, "corner": 0}},
            {"name": "same", "unread_anchors": {"center": 0, "corner": 3}},
            {"name": "reflect", "unread_anchors": {"center": 0, "corner": 3}},
            {"name": "odd", "unread_anchors": {"center": 1, "corner": 1}}]
    assert unread_anchor_notes(rows, "corner") == [
        "same and reflect: 3 of their 4 corners have no path; their centre/corner ratios compare the centre with the "
        "mean of the 4 corners, zeros included.",
        "odd: its centre and 1 of its 4 corners have no path; its centre/corner ratio compares the centre with the "
        "mean of the 4 corners, zeros included."]
    one_d = [{"name": "nonoverlapping", "unread_anchors": {"center": 0, "edge": 1}}]
    assert unread_anchor_notes(one_d, "edge", columns=2)[0].startswith(
        "nonoverlapping: 1 of its 2 edges has no path; its centre/edge ratios compare")


def test_a_remedy_that_changes_nothing_is_not_recommended(page):
    """ResNet-18's layers already pad by half their window with zeros: `same` is the model itself, so the verdict
    neither recommends it nor lists it (Swin-T's page once called `valid`, which changed nothing, the closest
    remedy)."""
    f = json.loads((page / "data" / "torchvision-resnet18" / "verdict.json").read_text())
    assert f["q5"]["unchanged"] == ["same"] and "same" not in f["q5"]["variants"] and f["q5"]["best"] != "same"
    block = re.sub(r"<[^>]+>", "", verdict_block(page, "torchvision-resnet18"))
    assert "(same rewrites layers that compute what they did, so it is this model too and not listed.)" in block


def test_no_remedy_closer_than_the_model_is_said_so(page):
    """Where every readable variant is as uneven as the model or more, none is called the closest."""
    from edgewise.report.verdict import render

    f = json.loads((page / "data" / SLUG / "verdict.json").read_text())
    f["q5"].update(best=None, best_uniform=False, also_uniform=[], model_max_over_min=3.08)
    text = re.sub(r"<[^>]+>", "", render(f))
    assert "No remedy that fits this model spreads the paths more evenly than it does (max/min 3.08×)." in text
    assert "nonoverlapping never reads 31 samples" in text  # the rest of the answer still follows


def test_the_global_remedy_is_set_against_the_model(page):
    """q3 says whether random global connections spread the paths more or less evenly than the model itself
    (Swin-T's page once gave its 16× beside the model's 3.08× without a word); the word is the data's."""
    said = 0
    for data in sorted((page / "data").iterdir()):
        f = json.loads((data / "verdict.json").read_text())
        g, q1 = f["q3"]["global_remedy"], f["q1"]
        if not g or not g["fits"] or g["uniform"] or g["unread"] or q1["unread"]:
            continue
        block = re.sub(r"<[^>]+>", "", verdict_block(page, data.name))
        word = "less even than" if g["max_over_min"] > q1["max_over_min"] else "more even than"
        assert f"parameters: {word} the model itself (max/min " in block, data.name
        said += 1
    assert said >= 3
    text = (page / "index.html").read_text()
    assert 'data-claim="less-even" data-of="global"' in text and 'data-claim="more-even" data-of="global"' in text


def test_a_fabricated_global_comparison_fails(page, tmp_path):
    out = copy(page, tmp_path)
    text = (out / "index.html").read_text()
    text = text.replace('data-claim="less-even" data-of="global"', 'data-claim="more-even" data-of="global"', 1)
    (out / "index.html").write_text(text)
    assert any("global is more even than the model" in p for p in check_report(out))


@pytest.mark.parametrize("mine, said", [(2.0, "more even than"), (3.0, "as even as"), (4.5, "less even than")])
def test_the_global_remedy_comparison_words(page, mine, said):
    from edgewise.report.verdict import render

    f = json.loads((page / "data" / SLUG / "verdict.json").read_text())
    f["q1"].update(max_over_min=3.0, unread=0, uniform=False)
    f["q3"]["global_remedy"].update(max_over_min=mine, uniform=False, unread=0, fits=True)
    text = re.sub(r"<[^>]+>", "", render(f))
    assert f"parameters: {said} the model itself (max/min 3×)." in text


def test_a_fabricated_remedy_table_cell_fails(page, tmp_path):
    """The remedy tables' cells are read back too: ratio, max/min and effect of each row against its saved map."""
    out = copy(page, tmp_path)
    text = (out / "index.html").read_text()
    assert text.count("<td>never reads 31</td>") >= 1
    text = text.replace("<td>never reads 31</td>", "<td>never reads 3</td>", 1)
    (out / "index.html").write_text(text)
    assert any("nonoverlapping 'never reads 3'" in p for p in check_report(out))


def _row(name, max_over_min, ratio):
    return {"name": name, "max_over_min": max_over_min, "center_corner_ratio": ratio, "unread": 0,
            "unread_where": "nowhere", "uniform": False, "unread_anchors": {}, "parameters_change": 0.0,
            "multiply_adds_change": 0.0}


@pytest.mark.parametrize("circular, best, near", [(9.00006, None, ["circular"]), (8.5, "circular", []),
                                                  (9.3, None, [])])
def test_a_remedy_is_closer_only_as_far_as_the_figures_shown(circular, best, near):
    """MobileNet V3's page called circular (max/min 9.00006×) the closest remedy beside the model's own 9.0001×:
    both are written 9×. A remedy is closer only where the three figures shown tell it apart."""
    from types import SimpleNamespace

    from edgewise.report.verdict import _recommend, _recommendation, evenness

    rows = [_row("original", 9.0001, 9.0001), _row("circular", circular, 2.25), _row("reflect", 25.0, 9.0)]
    s = SimpleNamespace(ev=SimpleNamespace(comparison=SimpleNamespace(rows=rows)),
                        ratio=lambda r: r["center_corner_ratio"])
    q5 = _recommend(s, {r["name"]: r for r in rows}, "same")
    assert q5["best"] == best and q5["closer_within_rounding"] == near
    assert evenness(circular, 9.0001) == {9.00006: "as-even", 8.5: "more-even", 9.3: "less-even"}[circular]
    if best is None:
        text = re.sub(r"<[^>]+>", "", _recommendation(q5, "px"))
        said = "No remedy that fits this model spreads the paths more evenly than it does"
        assert (said + (" to three significant figures (max/min 9×; circular: 9×)." if near else " (max/min 9×).")) \
            in text


def test_a_global_mean_to_a_vector_is_a_global_layer():
    """ShuffleNet V2 ends with ``x.mean([2, 3])``, a vector with no spatial axes: its page said of dense layers and
    global pools "this model has none" while q4 said every output unit reads every input through that mean."""
    import torch.nn as nn

    from edgewise import trace
    from edgewise.report.verdict import global_layers

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = nn.Conv2d(1, 4, 3, padding=1), nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(self.conv(x).mean([2, 3]))

    g = trace(Net(), (1, 8, 8))
    mean = next(nd.name for nd in g if nd.kind == "pool")
    assert g[mean].shape == (4,) and global_layers(g) == [mean]


@pytest.mark.parametrize("head", ["flatten, linear", "flatten, dropout, linear", "flatten, relu, dropout, linear"])
def test_a_dense_head_behind_dropout_reads_every_position(head):
    """AlexNet's classifier is Dropout → Linear over its flattened 6×6 map: the Linear reads every position, but the
    Dropout between hid the map, and its page said of dense layers "this model has none", q4 set the centre unit's
    spread against its 195-px field, and the advice never said that every output unit reads every pixel."""
    import torch.nn as nn

    from edgewise import receptive_field, trace
    from edgewise.report.verdict import global_layers

    parts = {"flatten": nn.Flatten(), "dropout": nn.Dropout(), "relu": nn.ReLU(), "linear": nn.Linear(4 * 36, 5)}
    net = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), *(parts[p] for p in head.split(", ")))
    g = trace(net, (1, 13, 13))
    linear = next(nd.name for nd in g if nd.kind == "linear")
    assert g.positions_behind(g[linear].inputs[0]) == 36
    assert global_layers(g) == [linear] and receptive_field(g).advice.global_via == linear
    vector = nn.Sequential(nn.Conv2d(1, 4, 13), nn.Flatten(), nn.Dropout(), nn.Linear(4, 5))  # a 1×1 map: not global
    g = trace(vector, (1, 13, 13))
    assert global_layers(g) == [] and receptive_field(g).advice.global_via is None


def test_a_branch_pool_is_compared_with_the_layer_it_reads():
    """GoogLeNet's branch pools read the block's input, not the convolution listed before them in another branch:
    its page said "inception3a.branch4.0: 25.6× → 25.6× flat" where the pool takes 14.9× to 25.6×."""
    from types import SimpleNamespace

    import torch
    import torch.nn as nn

    from edgewise import pathways, trace
    from edgewise.report.sections import layer_ratios

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(1, 2, 3, padding=1)
            self.branch1 = nn.Conv2d(2, 2, 5, padding=2)
            self.branch2 = nn.MaxPool2d(3, 1, padding=1)

        def forward(self, x):
            x = self.stem(x)
            return torch.cat([self.branch1(x), self.branch2(x)], 1)

    g = trace(Block(), (1, 16, 16))
    s = SimpleNamespace(layers=None, ev=SimpleNamespace(graph=g), ratio=lambda summary: summary["center_corner_ratio"])
    rows = {r["name"]: r for r in layer_ratios(s)}
    assert list(rows) == ["stem", "branch1", "branch2"]
    stem = pathways(g, layer="stem").summary["center_corner_ratio"]
    assert rows["branch2"]["before"] == pytest.approx(stem) and rows["branch2"]["ratio"] > stem * 1.1
    assert rows["branch1"]["ratio"] > rows["branch2"]["ratio"]  # the layer listed before it: not what it reads


def test_remedies_that_do_not_fit_for_one_reason_share_a_sentence():
    """ConvNeXt-T's answer said "valid does not fit: it changes … full does not fit: it changes … nonoverlapping does
    not fit: it changes …", three times the same reason."""
    from edgewise.report.verdict import _recommendation

    size = "remedy 'x' does not fit M: it changes the feature-map size at stage1"
    q5 = {"already_uniform": False, "best": None, "best_uniform": False, "also_uniform": [], "over_correct": [],
          "unread": [], "misfits": ["valid", "full", "nonoverlapping"], "identical_to_model": None, "unchanged": [],
          "model_max_over_min": 3.0, "closer_within_rounding": [],
          "variants": {"valid": {"fits": False, "why": size}, "full": {"fits": False, "why": size},
                       "nonoverlapping": {"fits": False, "why": "remedy 'x' does not fit M: it shrinks the map"}}}
    text = re.sub(r"<[^>]+>", "", _recommendation(q5, "px"))
    assert "valid and full do not fit: it changes the feature-map size at stage1." in text
    assert "nonoverlapping does not fit: it shrinks the map." in text and text.count("not fit") == 2


def test_global_pools_are_left_to_the_next_answer_and_long_lists_shortened(page):
    """RegNet-Y's q2 listed 17 squeeze-excitation pools "9× → 9× flat" as its answer to max pooling; a pool to one
    position is a global layer (q3). Ratios that differ past the figures shown read as equal ("reach 9× and end
    at 9×" was said of 9.0001× and 9.00006×)."""
    from edgewise.report.verdict import _names, render

    f = json.loads((page / "data" / "2-conv3-maxpool2-2-conv3-maxpool2-3-conv3" / "verdict.json").read_text())
    se = [f"block{i}.se.avgpool" for i in range(16)] + ["avgpool"]
    f["q2"].update(pools=[], global_pools=se, peak=9.0001, final=9.00006, low=4.0, layers=30)
    text = re.sub(r"<[^>]+>", "", render(f))
    assert ("This model pools only globally (block0.se.avgpool, block1.se.avgpool, block2.se.avgpool and 14 more "
            "(listed in verdict.json): see the next answer); the per-layer curve shows where its ratio grows, to 9× "
            "after the last window.") in text
    assert _names(["a", "b", "c", "d"]) == "a, b, c and d"
    head = json.loads((page / "data" / "conv3-maxpool2-conv3-gap-fc4" / "verdict.json").read_text())
    assert [p["layer"] for p in head["q2"]["pools"]] == ["maxpool1"] and head["q2"]["global_pools"] == ["gap1"]


def test_no_remedy_closer_does_not_deny_one_that_over_corrects():
    """Inception V3's global remedy spreads the paths far more evenly (55.8× against 2.76e+05×) but gives the border
    1.05× the centre's paths: q5 said "No remedy … spreads the paths more evenly than it does" while q3 called it
    more even than the model. The sentence now says what the closest remedy had to avoid."""
    from types import SimpleNamespace

    from edgewise.report.verdict import _recommend, _recommendation

    rows = [_row("original", 2.76e5, 6.46e4), _row("global", 55.8, 0.951), _row("reflect", 3e5, 5e4)]
    s = SimpleNamespace(ev=SimpleNamespace(comparison=SimpleNamespace(rows=rows)),
                        ratio=lambda r: r["center_corner_ratio"])
    q5 = _recommend(s, {r["name"]: r for r in rows}, None)
    assert q5["best"] is None and q5["evener_but_flawed"] == ["global"] and q5["over_correct"] == ["global"]
    text = re.sub(r"<[^>]+>", "", _recommendation(q5, "px"))
    assert ("No remedy that fits this model spreads the paths more evenly than it does without over-correcting or "
            "leaving positions unread (max/min 2.76e+05×). global over-corrects: the border gets 1.05× more paths "
            "than the centre.") in text


def test_no_correlation_is_quoted_where_the_path_counts_are_all_equal(page):
    """timm's ViT page said "its log map correlates with the log path counts at r = nan": with every position at the
    same count there is no correlation to take, and the verdict says why (a uniform claim the checker reads)."""
    from edgewise.report.verdict import render

    f = json.loads((page / "data" / "2-conv3-maxpool2-2-conv3-maxpool2-3-conv3" / "verdict.json").read_text())
    f["q4"]["correlation"] = float("nan")
    f["q1"].update(uniform=True, why_uniform=None)
    html_text = render(f)
    text = re.sub(r"<[^>]+>", "", html_text)
    assert "nan" not in text and "for the paths; the path counts are the same at every position, so no correlation " \
        "with them can be taken." in text
    assert 'data-claim="uniform" data-of="model">the path counts are the same at every position<' in html_text
    f["q1"]["uniform"] = False
    assert "no correlation of its log map with the log path counts can be taken (one is constant where both are " \
        "positive)" in re.sub(r"<[^>]+>", "", render(f))


def test_the_ratio_into_several_global_layers_is_the_last_ones(page):
    """EfficientNet V2's 31 global pools are squeeze-excitation gates from its fourth stage on and a final pool; the
    ratio after its last window (168×) is the one into the last of them, not into them all."""
    from edgewise.report.verdict import render

    f = json.loads((page / "data" / "conv3-maxpool2-conv3-gap-fc4" / "verdict.json").read_text())
    text = re.sub(r"<[^>]+>", "", render(f))
    assert "(the ratio is" in text and " into it and " in text
    f["q3"]["global_layers"] = ["se1.avgpool", "se2.avgpool", "gap1"]
    text = re.sub(r"<[^>]+>", "", render(f))
    assert " into the last of them and " in text and " into them and " not in text


def test_remedies_that_leave_the_same_positions_unread_share_a_sentence():
    """Swin-T's answer said "same never reads 447 px: rows 223 and columns 223." five times over, once per remedy;
    each name keeps its own claim, which the checker reads against that remedy's map."""
    from edgewise.report.verdict import _recommendation

    where = "rows 223 and columns 223"
    unread = {"fits": True, "unread": 447, "unread_where": where, "max_over_min": 3.08, "uniform": False}
    q5 = {"already_uniform": False, "best": None, "best_uniform": False, "also_uniform": [], "over_correct": [],
          "unread": ["same", "reflect", "partial", "nonoverlapping"], "misfits": [], "identical_to_model": None,
          "unchanged": [], "model_max_over_min": 3.08, "closer_within_rounding": [],
          "variants": {"same": unread, "reflect": unread, "partial": unread,
                       "nonoverlapping": {**unread, "unread": 31, "unread_where": "the last 31 samples, 225–255"}}}
    html_text = _recommendation(q5, "px")
    text = re.sub(r"<[^>]+>", "", html_text)
    assert f"same, reflect and partial never read 447 px: {where}." in text
    assert "nonoverlapping never reads 31 px: the last 31 samples, 225–255." in text
    for n in ("same", "reflect", "partial", "nonoverlapping"):
        assert f'data-claim="unread" data-of="{n}">{n}<' in html_text


def test_captions_group_alike_unread_variants_and_the_checker_reads_each(page):
    """Swin-T's captions said "X never reads 447 px (rows 223 and columns 223): they have no path to the output."
    once per remedy; alike variants now share the sentence, and the checker reads every name in it."""
    data = page / "data" / SLUG
    good = "Pathway maps. nonoverlapping never reads 31 samples (the last 31 samples, 225–255): they have no path."
    assert check_captions(good, data) == []
    grouped = "Pathway maps. nonoverlapping and same never read 31 samples (…): they have no path to the output."
    assert any("same never reads 31, its map has 0" in p for p in check_captions(grouped, data))
    text = (page / "index.html").read_text()
    assert re.search(r"nonoverlapping never reads 31 samples \(the last 31 samples, 225–255\): they have no path",
                     text)


def test_spread_sentence_groups_variants_that_leave_the_same_positions_unread():
    from types import SimpleNamespace

    from edgewise.report.sections import spread_sentence

    def row(name, unread, where, ratio=12.3):
        return {**_row(name, 3.08, ratio), "unread": unread, "unread_where": where,
                "unread_anchors": {"center": 0, "corner": 3, "edge": 2}}

    rows = [_row("original", 3.08, 3.08), row("same", 447, "rows 223 and columns 223"),
            row("reflect", 447, "rows 223 and columns 223"), row("valid", 26, "rows 0–12")]
    s = SimpleNamespace(ev=SimpleNamespace(shape=(3, 224, 224)), ratio=lambda r: r["center_corner_ratio"])
    text = spread_sentence(s, rows)
    assert "same and reflect never read 447 px (rows 223 and columns 223): they have no path to the output." in text
    assert "valid never reads 26 px (rows 0–12)" in text


def test_silent_positions_and_zero_scales_are_read_back_from_the_saved_sensitivity(tmp_path):
    """The verdict's "N of M px have exactly zero sensitivity" and "its builder starts K normalisation layers at
    weight 0" hold only while the saved map has N zeros among M positions and the saved result names K layers."""
    from edgewise.report.verdict import _silent
    from edgewise.testing.claims import _SPAN, _check_claim

    saved = np.ones((8, 8))
    saved[2:, :] = 0
    np.save(tmp_path / "sensitivity_init.map.npy", saved)
    (tmp_path / "sensitivity_init.json").write_text(json.dumps({"zero_scale_layers": ["a.bn2", "b.bn2"]}))

    def problems(q4):
        block = _silent(q4, "px")
        return block, [p for kind, key, of, text in _SPAN.findall(block) if kind == "claim"
                       for p in _check_claim(key, of, tmp_path, {}, {}, text)]

    block, found = problems({"zero_positions": 48, "positions": 64, "zero_scales": ["a.bn2", "b.bn2"]})
    assert found == [] and "48 of 64" in block and "<code>a.bn2</code> and <code>b.bn2</code>" in block
    assert block.startswith('<span class="claim" data-claim="silent"') and block.endswith("input. ")
    _, found = problems({"zero_positions": 47, "positions": 64, "zero_scales": ["a.bn2"]})
    assert "says 47 of 64 positions have zero sensitivity, the saved map has 48 of 64" in found
    assert "says [1] normalisation layers start at weight 0, the saved result names 2" in found
    assert _silent({"zero_positions": 0, "positions": 64, "zero_scales": []}, "px") == ""
    assert _silent({}, "px") == ""  # (a verdict saved before these fields)


@pytest.mark.parametrize("ratio, which", [(0.0, "centre"), (math.nan, "both"), (math.inf, "border")])
def test_a_sensitivity_zero_at_an_end_is_read_back_from_the_saved_map(tmp_path, ratio, which):
    """The verdict showed "0/0" for the sensitivity's ratio and interval where the centre was exactly 0 (and the
    checker refused them). It says which end is 0, and the checker reads that back from the saved map."""
    from edgewise.report.verdict import _sensitivity_ratio
    from edgewise.testing.claims import _SPAN, _check_claim

    saved = np.ones((5, 5))
    if which in ("centre", "both"):
        saved[2, 2] = 0
    if which in ("border", "both"):
        saved[0, 0] = saved[0, 4] = saved[4, 0] = saved[4, 4] = 0
    elif which == "centre":
        saved[0, 0] = 0  # (three corners positive: their mean is)
    np.save(tmp_path / "sensitivity_init.map.npy", saved)
    q4 = {"sensitivity_ratio": ratio, "paths_ratio": 3.0, "interval95": [math.nan, math.nan]}
    block = _sensitivity_ratio(q4, "corner")
    assert "0/0" not in block and f'data-claim="zero-at" data-of="{which}"' in block

    def problems(text):
        return [p for kind, key, of, t in _SPAN.findall(text) if kind == "claim" for p in
                _check_claim(key, of, tmp_path, {}, {}, t)]

    assert problems(block) == []
    other = next(w for w in ("centre", "both", "border") if w != which)
    assert problems(block.replace(f'data-of="{which}"', f'data-of="{other}"'))


def test_the_checker_refuses_a_correlation_with_uniform_path_counts(tmp_path):
    out = tmp_path / "circular"
    build("3*conv3", (1, 10, 10), padding="circular", out=out, n_inits=2, remedy_inits=0, progress=False)
    assert check_report(out) == []
    text = (out / "index.html").read_text()
    said = "the path counts are the same at every position"
    assert said in text
    shown = '<span class="num" data-field="q4.n_inits">2</span>, r = <span class="num" data-field="q4.correlation">' \
            'nan</span>'
    (out / "index.html").write_text(text.replace('data-field="q4.n_inits">2</span>', shown, 1))
    assert any("correlation with the path counts quoted where they are uniform" in p for p in check_report(out))
