"""Counts that repeat: a strided net with circular (or full) padding has no border effect, its counts depend only
on each position's place in a pattern that repeats, and its centre/border ratio compares two places in that
pattern. The page, the table and the answer say so (not "over-corrects" or "centre-heavy"), from the map's own
period, and the verdict says when the model is not the stride-1 stack its depth laws describe."""

import re
import shutil

import numpy as np
import pytest

from edgewise import nets
from edgewise.answer import answer
from edgewise.facts import correction, period, period_words, spread
from edgewise.report.builder import build
from edgewise.testing.claims import check_report

STRIDED = "conv5/s2, conv5/s2, conv5/s2, conv5, conv5"  # same padding; full and circular repeat every 8
SLUG = "conv5-s2-conv5-s2-conv5-s2-conv5-conv5"
CIRCULAR = nets.from_spec("conv3/s2, conv3, conv3/s2, conv3", (1, 16, 16), padding="circular")
CIRCULAR.reference = "strided circular"  # its own counts repeat every 4 px down and across
PLAIN = "6*conv3"
GAPS = nets.from_spec("conv2/s3, conv3", (1, 32), padding="valid")
GAPS.reference = "gaps"  # every third sample unread: scattered positions, the model's own


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("periodic")
    build([STRIDED, CIRCULAR, PLAIN, GAPS], [(1, 128), (1, 16, 16), (1, 32), (1, 32)], out=out, n_inits=2,
          remedy_inits=0, progress=False)
    return out


def text_of(out) -> str:
    return (out / "index.html").read_text()


def verdict_block(out, slug):
    text = text_of(out)
    start = text.index(f'href="data/{slug}/verdict.json"')
    return text[text.rindex("<h3>", 0, start):text.index("</ol>", start)]


def plain(html_text: str) -> str:
    return re.sub(r"<[^>]+>", "", html_text)


# ----------------------------------------------------------------------------------------------- facts

def test_period_of_a_repeating_map_and_none_otherwise():
    stride2 = np.tile([2, 1], 8)  # kernel 3, stride 2, circular: even positions in two windows, odd in one
    assert period(np.log10(stride2)) == [2]
    assert period(np.log10(stride2), counts=stride2) == [2]
    assert period(np.log10(np.ones(16))) is None  # uniform: no pattern
    edge = np.array([1, 2, 3, 3, 3, 3, 2, 1])  # a border effect
    assert period(np.log10(edge)) is None
    grid = np.tile(np.array([[4, 2], [2, 1]]), (4, 4))
    assert period(np.log10(grid)) == [2, 2]
    rows = np.tile(np.array([[3, 1, 1, 1]]), (4, 2))  # the same down each column, every 4 across
    assert period(np.log10(rows)) == [1, 4]
    assert period(np.log10(np.tile(np.array([[1], [5]]), (3, 6)))) == [2, 1]
    # a period that does not divide the length does not wrap round: no repeat
    assert period(np.log10(np.array([2, 1, 2, 1, 2]))) is None


def test_exact_counts_tell_apart_what_log10_cannot():
    big = 10 ** 20
    counts = np.array([big, big + 1] * 4, dtype=object)
    assert period(np.log10(counts.astype(float)), counts=counts) == [2]
    assert spread(counts)["period"] == [2]
    assert spread(np.array([big] * 8, dtype=object))["period"] is None


def test_period_words():
    assert period_words([8], "samples") == "repeat every 8 samples"
    assert period_words([32, 32], "px") == "repeat every 32 px down and across"
    assert period_words([4, 8], "px") == "repeat every 4 px down and 8 px across"
    assert period_words([1, 8], "px") == "repeat every 8 px across (the same down each column)"
    assert period_words([8, 1], "px") == "repeat every 8 px down (the same along each row)"


def test_a_repeating_map_is_periodic_not_over_corrected_or_centre_heavy():
    s = spread(np.tile([2, 1], 8))
    assert correction(0.5, s) == correction(2.0, s) == "periodic"
    s = spread(np.array([2, 1, 1, 1, 1, 1, 1, 2]))
    assert s["period"] is None and correction(0.5, s) == "over-corrects"


# ----------------------------------------------------------------------------------------------- the page

def test_every_claim_on_the_page_holds(page):
    assert check_report(page) == []


def test_the_verdict_says_no_border_effect_where_the_counts_repeat(page):
    block = plain(verdict_block(page, SLUG))
    for p in ("full", "circular"):
        law = re.search(rf"{p}: exactly uniform at every depth; this model with {p} padding: [^\n]*?\)", block).group(0)
        assert "no border effect: its counts repeat every 8 samples" in law, law
        assert "over-corrects" not in law
    assert "full and circular leave no border effect: their counts repeat every 8 samples." in block
    assert "symmetric over-corrects" in block  # not periodic: still over-corrects
    own = plain(verdict_block(page, "strided-circular"))
    assert "(all positions: max/min" in own and "no border effect: its counts repeat every 4 px down and across" in own


def test_tables_and_captions_say_periodic_with_the_period(page):
    text = text_of(page)
    assert text.count("<td>periodic (8 samples)</td>") >= 2  # full and circular, in the padding table at least
    assert "<td>periodic (4×4 px)</td>" in text
    assert ("full and circular leave no border effect: their counts repeat every 8 samples, so the centre and the "
            "end differ only by where each falls in that pattern.") in plain(text)
    assert "The model leaves no border effect: its counts repeat every 4 px down and across" in plain(text)


def test_the_verdict_says_when_the_model_is_not_the_stack_of_its_laws(page):
    block = plain(verdict_block(page, SLUG))
    assert ("For L such layers on 128 samples, by edgewise.theory.depth_law. This model is not "
            "such a stack (3 layers with a stride: conv1, conv2 and conv3), so its own values beside each law need "
            "not follow it:") in block
    assert "not such a stack" not in plain(verdict_block(page, "6-conv3"))


def test_the_opening_answers_for_the_stack_from_its_laws(page):
    """The opening names the stack it answers for, and the paddings it lists are those whose law is exponential
    (not a fixed "Only with valid padding" beside a model that is itself uniform or periodic)."""
    import json

    for slug in (SLUG, "6-conv3"):
        q1 = json.loads((page / "data" / slug / "verdict.json").read_text())["q1"]
        exponential = [p for p, law in q1["laws"].items() if law["kind"] == "exponential"]
        assert exponential  # (valid padding's law: the stack's ratio multiplies with every layer)
        opening = (f"In a stack of {q1['block']} layers (stride 1), "
                   f"only with {' and '.join(exponential)} padding. This model (")
        assert "exponential in depth? " + opening in plain(verdict_block(page, slug)), slug


@pytest.mark.parametrize("old, new, problem", [
    ("<td>periodic (8 samples)</td>", "<td>periodic (4 samples)</td>", "period is [8]"),
    ("their counts repeat every 8 samples</span>.", "their counts repeat every 16 samples</span>.", "period [16]"),
    ("full and circular leave no border effect: their counts repeat every 8 samples, so",
     "circular over-corrects. full leaves no border effect: its counts repeat every 8 samples, so",
     "circular over-corrects, but its counts repeat"),
])
def test_fabricated_periods_fail(page, tmp_path, old, new, problem):
    out = shutil.copytree(page, tmp_path / "copy")
    text = text_of(out)
    assert old in text
    (out / "index.html").write_text(text.replace(old, new))  # (every copy: the figures' alt texts hold them too)
    assert any(problem in p for p in check_report(out)), check_report(out)


def test_a_map_that_stops_repeating_fails_its_claims(page, tmp_path):
    out = shutil.copytree(page, tmp_path / "copy")
    path = out / "data" / SLUG / "remedies.log10_circular.npy"
    m = np.load(path)
    m[0] += 0.5
    np.save(path, m)
    problems = check_report(out)
    assert any("says circular's counts repeat with period [8], its map's period is None" in p for p in problems)
    assert any("the table says circular is 'periodic (8 samples)'" in p for p in problems)


def test_a_repeating_variant_no_caption_mentions_fails(page, tmp_path):
    out = shutil.copytree(page, tmp_path / "copy")
    text = text_of(out).replace("full and circular leave no border effect", "full and circular leave a border effect")
    (out / "index.html").write_text(text)
    assert any("circular's counts repeat (no border effect), but no caption says so" in p for p in check_report(out))


# ----------------------------------------------------------------------------------------------- the answer

def test_the_answer_says_no_border_effect_where_the_counts_repeat():
    a = answer(CIRCULAR, (1, 16, 16), n_inits=2, perturb=False)
    assert "no border effect: they repeat every 4 px down and across" in a.text
    full = next(x for x in a.text.splitlines() if x.startswith("- full:"))
    assert "no border effect: its counts repeat every 4 px down and across" in full and "over-corrects" not in full


# ----------------------------------------------------------------------------------------------- unread positions

def test_the_models_own_unread_positions_are_in_its_caption_and_scattered_ones_counted(page, tmp_path):
    """SqueezeNet never reads its last row and column, and no caption said so; its `global` remedy's 63 unread
    pixels were listed row by row (31 rows, 33 columns). Many runs are now counted with the span they lie in."""
    text = plain(text_of(page))
    where = "scattered between 2 and 29"  # conv2/s3 reads 0–1, 3–4, …, 30–31: never 2, 5, …, 29
    assert f"The model never reads 10 samples ({where}): they have no path to the output." in text
    out = shutil.copytree(page, tmp_path / "copy")
    (out / "index.html").write_text(text_of(out).replace("The model never reads 10 samples", "The model reads all"))
    assert any("gaps: original leaves positions unread, but no caption says so" in p for p in check_report(out))


def test_unread_where_lists_a_few_runs_and_counts_many():
    from edgewise.facts import unread_where

    m = np.zeros((20, 20), bool)
    m[19], m[:, 19] = True, True
    assert unread_where(m) == "rows 19 and columns 19"
    m = np.zeros((20, 20), bool)
    m[[1, 4, 7, 9, 12, 15], [2, 5, 8, 11, 13, 17]] = True
    assert unread_where(m) == "6 rows scattered between 1 and 15, 6 columns scattered between 2 and 17"
    assert unread_where(np.isin(np.arange(30), [1, 4, 7, 9])) == "sample 1, sample 4, sample 7, sample 9"
    assert unread_where(np.isin(np.arange(30), [1, 4, 7, 9, 12])) == "scattered between 1 and 12"


def test_a_stack_of_other_dilations_is_not_the_stack_of_the_laws():
    """A WaveNet-like stack (kernel 2, dilations 1, 2, 4, …) has the laws' kernel but not their dilation."""
    from edgewise import trace
    from edgewise.report.verdict import _unlike, _unlike_words

    g = trace(nets.from_spec("conv2/d1, conv2/d2, conv2/d4", (1, 64)), (1, 64))
    u = _unlike(g, 2, 1)
    assert u["strided"] == [] and u["kernels"] == ["conv2", "conv3"]
    assert "(2 stride-1 layers with another kernel or dilation than conv2: conv2 and conv3)" in plain(
        _unlike_words(u, "conv2"))
    assert _unlike_words(_unlike(trace(nets.from_spec("3*conv2", (1, 64)), (1, 64)), 2, 1), "conv2") == ""


def test_a_variant_that_reads_nothing_is_checked_without_a_number(tmp_path):
    """The non-overlapping remedy of a dilated stack (strides 2, dilations 1 … 32) reads no input at all: its row
    shows 0/0, which the table checker once crashed on (its ratio is saved as the string "nan")."""
    import json

    from edgewise.testing.claims import check_remedy_table

    (tmp_path / "remedies.json").write_text(json.dumps({"rows": [
        {"name": "nonoverlapping", "center_edge_ratio": "nan", "center_corner_ratio": None, "max_over_min": "nan"}]}))
    np.save(tmp_path / "remedies.log10_nonoverlapping.npy", np.full(8, -np.inf))
    headers = ["remedy", "paths", "max/min", "effect"]
    assert check_remedy_table(headers, [["nonoverlapping", "0/0", "0/0", "never reads 8"]], tmp_path) == []
    assert check_remedy_table(headers, [["nonoverlapping", "1×", "0/0", "never reads 8"]], tmp_path) != []


def test_one_unread_position_is_a_sample_not_samples():
    from edgewise.report.sections import _unread_sentence

    assert _unread_sentence(["valid"], 1, "the last sample, 63", "samples") == \
        "valid never reads 1 sample (the last sample, 63): it has no path to the output."
    assert _unread_sentence(["same", "reflect"], 447, "rows 223 and columns 223", "px") == \
        "same and reflect never read 447 px (rows 223 and columns 223): they have no path to the output."


def test_a_map_with_unread_positions_has_no_period():
    """Unread positions are what such a map says first; a period is only looked for where every position is read."""
    gaps = np.tile([2, 0], 8)  # every other position unread: it repeats, but "never reads 8" is the fact
    assert spread(gaps)["unread"] == 8 and spread(gaps)["period"] is None
