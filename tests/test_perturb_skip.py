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
from edgewise._cone import cone_fraction
from edgewise.answer import PERTURB_BYTES, PERTURB_FLOPS, PERTURB_LIMIT, answer, perturb_skip, skip_words
from edgewise.limits import forward_costs
from edgewise.report.builder import build
from edgewise.testing.claims import check_report

answer_mod = importlib.import_module("edgewise.answer")  # (the package's `answer` is the function)
SPEC, SHAPE = "3*conv3", (1, 12, 12)  # 144 positions, each on a cone of at most 34 % of a pass, + 512 sign patterns


def _work(model, shape):
    """(passes, operations and float64 bytes of layer outputs) of the experiment, worked out here."""
    cone = cone_fraction(model, shape[1:])
    passes = math.ceil(math.prod(shape[1:]) * (1 if cone is None else cone) + 512)
    cost = forward_costs(model, shape)
    return passes, passes * cost.flops, passes * cost.activations * 2


def test_a_chain_of_local_layers_is_priced_at_its_nudges_cones():
    net = nets.from_spec(SPEC, SHAPE)
    # 3 convolutions of 3 taps on 12 px: the last one's cone is 7×7 of 12×12 (34 %), each earlier one's smaller
    assert cone_fraction(net, SHAPE[1:]) == pytest.approx(49 / 144)
    assert cone_fraction(nets.from_spec("conv3, maxpool2, conv3", (1, 12, 12)), (12, 12)) == pytest.approx(16 / 36)
    assert cone_fraction(tv.models.resnet18(), (64, 64)) is None
    assert _work(net, SHAPE)[0] == 561


@pytest.mark.parametrize("limit", ["PERTURB_FLOPS", "PERTURB_BYTES"])
def test_left_out_just_above_either_limit_and_run_at_it(monkeypatch, limit):
    net = nets.from_spec(SPEC, SHAPE)
    passes, flops, size = _work(net, SHAPE)
    total = flops if limit == "PERTURB_FLOPS" else size
    monkeypatch.setattr(answer_mod, limit, total)
    assert perturb_skip(net, SHAPE) is None
    monkeypatch.setattr(answer_mod, limit, total - 1)
    skipped = perturb_skip(net, SHAPE)
    assert skipped["why"] == "cost" and skipped["forwards"] == passes
    assert (skipped["total_flops"], skipped["total_bytes"]) == (flops, size)
    said = skip_words(skipped)
    assert ("more operations than" in said) == (limit == "PERTURB_FLOPS") and "up to the work of 561" in said
    assert ("more layer outputs than" in said) == (limit == "PERTURB_BYTES")
    assert perturb_skip(net, SHAPE, n_samples=3)["forwards"] == math.ceil(3 * (144 * 49 / 144 + 512))


def test_nets_of_today_at_64_px_are_left_out_and_positions_come_first():
    shape = (3, 64, 64)
    resnet = perturb_skip(tv.models.resnet18(), shape)  # 1.4 TFLOP of convolutions (57 s here)
    assert resnet["why"] == "cost" and resnet["cone"] is None and resnet["total_flops"] > PERTURB_FLOPS
    assert "4608 float64 forward passes" in skip_words(resnet) and "up to" not in skip_words(resnet)
    effnet = perturb_skip(tv.models.efficientnet_b0(), shape)  # 0.3 TFLOP but 61 GB of layer outputs (59 s here)
    assert effnet["total_flops"] < PERTURB_FLOPS and effnet["total_bytes"] > PERTURB_BYTES
    assert perturb_skip(tv.models.mobilenet_v3_small(), shape) is None  # 0.06 TFLOP, 13 GB (16 s here)
    assert perturb_skip(nets.from_spec(nets.DEFAULT_SPEC, nets.DEFAULT_INPUT), nets.DEFAULT_INPUT) is None
    big = (1, 65, 64)  # positions over the limit: no model is run to price it
    assert perturb_skip(None, big) == {"why": "positions", "positions": 65 * 64, "limit": PERTURB_LIMIT}


def test_the_answer_says_why_and_perturb_true_still_runs_it(monkeypatch):
    monkeypatch.setattr(answer_mod, "PERTURB_FLOPS", 1.0)
    left_out = answer(SPEC, SHAPE, n_inits=2)
    skipped = left_out.facts["perturbation_skipped"]
    assert left_out.facts["perturbation"] is None and skipped["why"] == "cost"
    assert f"Perturbation experiment.** Not run: it would take up to the work of {skipped['forwards']} float64" in \
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
        mp.setattr(answer_mod, "PERTURB_FLOPS", _work(nets.from_spec(SPEC, SHAPE), SHAPE)[1] - 1)
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
    lambda text: text.replace("up to the work of 561 float64", "up to the work of 560 float64", 1),
    lambda text: text.replace("up to the work of 561", "561", 1),
    lambda text: text.replace("(144 nudged", "(143 nudged", 1),
    lambda text: text.replace("at most 34 % of a pass", "at most 30 % of a pass", 1),
    lambda text: text.replace("more operations than", "more layer outputs than", 1),
    _doubled(r"of (\S+) GFLOP and"), _doubled(r"and (\S+) MB of layer"), _doubled(r"each, (\S+) TFLOP"),
    _doubled(r"TFLOP and (\S+) GB in all"), _doubled(r"operations than the (\S+) TFLOP")])
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
        assert f"{PERTURB_BYTES / 1e9:g} GB of layer outputs" in text


def test_sensitivity_perturb_says_first_what_it_costs_where_answer_would_leave_it_out():
    import io

    from rich.console import Console

    said = Console(file=io.StringIO(), width=1000)
    cli._perturb_cost(said, tv.models.resnet18(), (3, 32, 32), 4)  # 8 × 1536 passes of 0.075 GFLOP: 0.92 TFLOP
    text = said.file.getvalue()
    assert "12288 float64 forward passes (1024 nudged positions and 512 sign patterns, for each of 8 inputs)" in text
    assert "more operations than the 0.75 TFLOP" in text and "this takes a while" in text
    quiet = Console(file=io.StringIO(), width=1000)
    cli._perturb_cost(quiet, nets.from_spec(nets.DEFAULT_SPEC, nets.DEFAULT_INPUT), nets.DEFAULT_INPUT, 4)
    assert quiet.file.getvalue() == ""


def test_the_checker_reads_a_note_on_several_inputs(tmp_path, monkeypatch):
    import numpy as np

    from edgewise.testing.claims import check_perturbation_note

    monkeypatch.setattr(answer_mod, "PERTURB_FLOPS", 1.0)
    skipped = perturb_skip(tv.models.resnet18(), (3, 12, 12), n_samples=3)
    (tmp_path / "perturbation_skipped.json").write_text(json.dumps(skipped))
    np.save(tmp_path / "sensitivity_init.map.npy", np.ones((12, 12)))
    note = skip_words(skipped)
    assert "(144 nudged positions and 512 sign patterns, for each of 3 inputs)" in note
    assert check_perturbation_note(f'<div class="note">{note}</div>', tmp_path) == []
    wrong = note.replace("for each of 3 inputs", "for each of 2 inputs")
    assert check_perturbation_note(f'<div class="note">{wrong}</div>', tmp_path)


def test_a_chain_in_training_mode_is_priced_as_the_experiment_runs_it_in_eval_mode():
    from torch import nn

    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Dropout(0.1), nn.ReLU(),
                        nn.Conv2d(4, 4, 3, padding=1))
    assert net.training and cone_fraction(net, (12, 12)) == pytest.approx(25 / 144) and net.training
