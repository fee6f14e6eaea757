"""The perturbation experiment is left out by default where it would be slow (too many positions, or too many
operations: a 167M-parameter ViT's took far beyond 15 min), and the answer and the report then say why, with
numbers the checker reads back from the saved data."""

import importlib
import json
import math
import re
import shutil

import pytest
import torchvision as tv

from edgewise import cli, nets
from edgewise.answer import PERTURB_FLOPS, PERTURB_LIMIT, answer, perturb_skip, skip_words
from edgewise.limits import forward_cost
from edgewise.report.builder import build
from edgewise.testing.claims import check_report

answer_mod = importlib.import_module("edgewise.answer")  # (the package's `answer` is the function)
SPEC, SHAPE = "3*conv3", (1, 12, 12)  # 144 positions + 512 sign patterns = 656 forward passes


def _cost(model, shape):
    return (math.prod(shape[1:]) + 512) * forward_cost(model, shape)[1]


def test_left_out_just_above_its_limit_and_run_at_it(monkeypatch):
    net = nets.from_spec(SPEC, SHAPE)
    total = _cost(net, SHAPE)
    monkeypatch.setattr(answer_mod, "PERTURB_FLOPS", total)
    assert perturb_skip(net, SHAPE) is None
    monkeypatch.setattr(answer_mod, "PERTURB_FLOPS", total - 1)
    skipped = perturb_skip(net, SHAPE)
    assert skipped["why"] == "cost" and skipped["forwards"] == 656 and skipped["total"] == total
    assert skipped["cones"] is True  # a chain of local layers: its single nudges run on their cones
    assert perturb_skip(net, SHAPE, n_samples=3)["forwards"] == 3 * 656


def test_a_net_of_branches_is_priced_at_whole_forward_passes_and_positions_come_first():
    net, shape = tv.models.resnet50(), (3, 64, 64)  # 0.67 GFLOP a pass: 3.1 TFLOP, over the 2 TFLOP default
    skipped = perturb_skip(net, shape)
    assert skipped["why"] == "cost" and skipped["cones"] is False and skipped["total"] > PERTURB_FLOPS
    assert "up to" not in skip_words(skipped) and "4608 float64 forward passes" in skip_words(skipped)
    assert perturb_skip(tv.models.resnet18(), shape) is None  # 1.4 TFLOP: it runs
    big = (1, 65, 64)  # positions over the limit: no model is run to price it
    assert perturb_skip(None, big) == {"why": "positions", "positions": 65 * 64, "limit": PERTURB_LIMIT}


def test_the_answer_says_why_and_perturb_true_still_runs_it(monkeypatch):
    monkeypatch.setattr(answer_mod, "PERTURB_FLOPS", 1.0)
    left_out = answer(SPEC, SHAPE, n_inits=2)
    skipped = left_out.facts["perturbation_skipped"]
    assert left_out.facts["perturbation"] is None and skipped["why"] == "cost"
    assert f"Perturbation experiment.** Not run: it would take up to {skipped['forwards']} float64 forward passes" in \
        left_out.text and "--perturb runs it" in left_out.text
    asked = answer(SPEC, SHAPE, n_inits=2, perturb=True)
    assert asked.facts["perturbation"] is not None and asked.facts["perturbation_skipped"] is None
    assert "not run" not in asked.text
    declined = answer(SPEC, SHAPE, n_inits=2, perturb=False)
    assert declined.facts["perturbation"] is None and declined.facts["perturbation_skipped"] is None


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("skip")
    with pytest.MonkeyPatch.context() as mp:  # the first net is priced over the limit, the second under it
        mp.setattr(answer_mod, "PERTURB_FLOPS", _cost(nets.from_spec(SPEC, SHAPE), SHAPE) - 1)
        build([SPEC, "2*conv3"], [SHAPE, (1, 8, 8)], out=out, n_inits=2, remedy_inits=0, progress=False)
    return out


def _note(out):
    return re.search(r'<div class="note">(The perturbation experiment was not run:.*?)</div>',
                     (out / "index.html").read_text())


def test_the_report_notes_the_left_out_experiment_and_the_checker_reads_it_back(page):
    assert check_report(page) == []
    data = page / "data"
    saved = json.loads((data / "3-conv3" / "perturbation_skipped.json").read_text())
    assert saved["why"] == "cost" and not (data / "3-conv3" / "perturbation.json").exists()
    assert (data / "2-conv3" / "perturbation.json").exists()
    assert _note(page)[1] == skip_words(saved)
    numbers = json.loads((page / "report.json").read_text())["numbers"]["sensitivity"]
    assert numbers["3*conv3"]["perturbation_skipped"] == saved


def _doubled(pattern):
    return lambda text: re.sub(pattern, lambda m: m[0].replace(m[1], f"{2 * float(m[1]):.3g}"), text, count=1)


@pytest.mark.parametrize("wrong", [
    lambda text: text.replace("take up to 656 float64", "take up to 655 float64", 1),
    lambda text: text.replace("take up to 656", "take 656", 1),
    lambda text: text.replace("(144 nudged", "(143 nudged", 1),
    _doubled(r"of (\S+) GFLOP each"), _doubled(r"each, (\S+) TFLOP"), _doubled(r"the limit of (\S+) TFLOP")])
def test_the_checker_catches_a_wrong_note(page, tmp_path, wrong):
    out = shutil.copytree(page, tmp_path / "copy")
    text = (out / "index.html").read_text()
    assert wrong(text) != text
    (out / "index.html").write_text(wrong(text))
    assert check_report(out)


def test_the_checker_catches_a_note_beside_an_experiment_that_ran_or_none_where_it_was_left_out(page, tmp_path):
    out = shutil.copytree(page, tmp_path / "copy")
    text = (out / "index.html").read_text()
    note = _note(out)[0]
    ran = text.replace(note, "", 1).replace('<figure id="2-conv3-perturbation">', note + '<figure id="2-conv3-'
                                            'perturbation">', 1)
    (out / "index.html").write_text(ran)
    problems = check_report(out)
    assert any("2-conv3: the perturbation experiment ran" in p for p in problems)
    assert any("3-conv3: the perturbation experiment was left out, and 0 notes" in p for p in problems)


def test_no_perturb_is_checked_before_any_work_and_the_options_name_the_limits(tmp_path, monkeypatch):
    import edgewise.limits as limits

    def refuse(*args, **kwargs):
        raise AssertionError("the perturbation experiment's memory was checked")

    monkeypatch.setattr(limits, "check_perturbation", refuse)
    build("2*conv3", (1, 8, 8), out=tmp_path / "r", n_inits=2, remedy_inits=0, progress=False, perturb=False)
    assert not (tmp_path / "r" / "data" / "2-conv3" / "perturbation.json").exists()
    assert json.loads((tmp_path / "r" / "config.json").read_text())["perturb"] is False
    with pytest.raises(AssertionError, match="memory was checked"):
        build("2*conv3", (1, 8, 8), out=tmp_path / "s", n_inits=2, remedy_inits=0, progress=False)
    commands = cli._parser()._subparsers._group_actions[0].choices
    for command in ("report", "answer"):
        text = " ".join(commands[command].format_help().split())
        assert f"at most {PERTURB_LIMIT} positions" in text and f"{PERTURB_FLOPS / 1e12:g} TFLOP" in text
