"""The experiment runner: validation, caching and resume after an interruption, backends, the table, the CLI."""

import dataclasses
import json
import math
import sys

import pytest

from edgewise import EdgewiseError, experiments
from edgewise.experiments import interval, run, run_key
from edgewise.testing import toy_task
from edgewise.testing.toy_task import TOY

CALLS = []


def counting(config, remedy, seed, progress=None, checkpoint=None):
    CALLS.append((remedy, seed))
    return toy_task.run_one(config, remedy, seed, progress, checkpoint)


COUNTING = dataclasses.replace(TOY, run_one=counting)


def strip(exp):
    """The runs without their timings (which differ between otherwise identical sweeps)."""
    return [{k: v for k, v in r.items() if k != "seconds"} for r in exp.runs]


def test_bad_names_list_the_valid_ones():
    with pytest.raises(EdgewiseError, match="unknown task 'border-digit'; did you mean 'border-digits'.*"
                                            "Valid tasks: absolute-position, border-digits, border-1d, symmetry"):
        run("border-digit")
    with pytest.raises(EdgewiseError, match="unknown remedy 'circulr'; did you mean 'circular'.*Valid remedies: valid"):
        run(TOY, "same,circulr")
    with pytest.raises(EdgewiseError, match="varies the init; unknown init 'same'. Valid: constant, random"):
        run("symmetry", ["same"])
    with pytest.raises(EdgewiseError, match="has no option 'epoch'; its options: .*epochs"):
        run(TOY, epoch=3)
    with pytest.raises(EdgewiseError, match="has no size 'huge'; choose one of quick"):
        run(TOY, size="huge")
    with pytest.raises(EdgewiseError, match="unknown backend 'threads'; choose one of inprocess, process, ray"):
        run(TOY, backend="threads")
    with pytest.raises(EdgewiseError, match="seeds must be at least 1"):
        run(TOY, seeds=0)


def test_table_and_interval():
    mean, half = interval([0.5, 0.7, 0.9])
    assert mean == pytest.approx(0.7) and half == pytest.approx(4.303 * 0.2 / math.sqrt(3))
    assert math.isnan(interval([0.5])[1])
    exp = run(TOY, seeds=2, progress=False)
    assert exp.remedies == ["same", "circular"] and exp.seeds == [0, 1] and len(exp.runs) == 4
    cell = exp.table()["same"]["test"]
    accs = exp.accuracies("same", "test")
    assert cell["n"] == 2 and cell["mean"] == pytest.approx(sum(accs) / 2)
    doc = json.loads(exp.to_json())
    assert set(doc["table"]) == {"same", "circular"} and set(doc["table"]["same"]) == {"test", "train"}
    assert "± " in exp.text() and exp.text(markdown=True).startswith("| remedy | test | train |")
    assert experiments.Experiment.from_dict(doc).table() == exp.table()


def test_same_seed_same_numbers():
    a, b = run(TOY, seeds=[3], progress=False), run(TOY, seeds=[3], progress=False)
    assert strip(a) == strip(b)
    c = run(TOY, seeds=[4], progress=False)
    assert [r["metrics"]["loss"] for r in c.runs] != [r["metrics"]["loss"] for r in a.runs]


def test_remedy_that_does_not_fit_is_a_row_not_a_crash():
    exp = run(TOY, seeds=2, progress=False, fail="circular")
    assert exp.errors() == {"circular": "toy: remedy 'circular' does not fit"}
    assert exp.table()["circular"]["test"]["n"] == 0
    assert "does not fit: toy" in exp.text()


def test_cache_key_is_a_content_hash():
    config = TOY.config()
    assert run_key("toy", config, "same", 0) == run_key("toy", dict(reversed(config.items())), "same", 0)
    assert run_key("toy", config, "same", 0) != run_key("toy", {**config, "epochs": 4}, "same", 0)
    assert run_key("toy", config, "same", 0) != run_key("toy", config, "same", 1)


def test_cached_runs_are_not_run_again(tmp_path):
    CALLS.clear()
    first = run(COUNTING, seeds=2, out=tmp_path, progress=False)
    assert len(CALLS) == 4
    assert json.loads((tmp_path / "config.json").read_text())["config"] == TOY.config()
    assert len(list((tmp_path / "runs").glob("*.json"))) == 4 and not list((tmp_path / "runs").glob("*.ckpt"))
    again = run(COUNTING, seeds=3, out=tmp_path, progress=False)  # one more seed: only its runs are new
    assert CALLS[4:] == [("same", 2), ("circular", 2)]
    assert strip(again)[:2] == strip(first)[:2]
    run(COUNTING, seeds=3, out=tmp_path, progress=False, epochs=4)  # another configuration: all new
    assert len(CALLS) == 6 + 6


class Interrupt(BaseException):
    pass


def test_interrupted_sweep_resumes_and_loses_nothing(tmp_path):
    whole = run(TOY, seeds=2, progress=False)
    CALLS.clear()

    def stop_at_third(config, remedy, seed, progress=None, checkpoint=None):
        if len(CALLS) == 2:
            raise Interrupt
        return counting(config, remedy, seed, progress, checkpoint)

    with pytest.raises(Interrupt):
        run(dataclasses.replace(TOY, run_one=stop_at_third), seeds=2, out=tmp_path, progress=False)
    assert len(list((tmp_path / "runs").glob("*.json"))) == 2
    resumed = run(COUNTING, seeds=2, out=tmp_path, progress=False)
    assert CALLS[2:] == [("circular", 0), ("circular", 1)]
    assert strip(resumed) == strip(whole)


def test_run_interrupted_mid_training_resumes_from_its_checkpoint(tmp_path):
    whole = run(TOY, "same", seeds=1, progress=False, epochs=3)

    def stop_after_epoch_2(config, remedy, seed, progress=None, checkpoint=None):
        def report(done, total):
            if done == 2:
                raise Interrupt
        return toy_task.run_one(config, remedy, seed, report, checkpoint)

    with pytest.raises(Interrupt):
        run(dataclasses.replace(TOY, run_one=stop_after_epoch_2), "same", seeds=1, out=tmp_path, progress=False,
            epochs=3)
    assert len(list((tmp_path / "runs").glob("*.ckpt"))) == 1
    seen = []

    def watch(config, remedy, seed, progress=None, checkpoint=None):
        return toy_task.run_one(config, remedy, seed, lambda done, total: seen.append(done), checkpoint)

    resumed = run(dataclasses.replace(TOY, run_one=watch), "same", seeds=1, out=tmp_path, progress=False, epochs=3)
    assert seen == [2, 3]  # it went on from the checkpoint of epoch 2
    assert strip(resumed) == strip(whole)
    assert not list((tmp_path / "runs").glob("*.ckpt"))


@pytest.mark.parametrize("backend", ["process", "ray"])
def test_parallel_backends_give_the_in_process_numbers(backend, tmp_path):
    if backend == "ray":
        pytest.importorskip("ray")
    local = run(TOY, seeds=2, progress=False, workers=1)
    parallel = run(TOY, seeds=2, progress=False, backend=backend, workers=2, out=tmp_path)
    for a, b in zip(local.runs, parallel.runs):
        assert (a["remedy"], a["seed"]) == (b["remedy"], b["seed"])
        assert a["metrics"]["accuracy"] == b["metrics"]["accuracy"]
        assert a["metrics"]["loss"] == pytest.approx(b["metrics"]["loss"], rel=1e-4)
    assert len(list((tmp_path / "runs").glob("*.json"))) == 4


def test_progress_bars_overall_and_per_run(capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # bars are drawn on a terminal only
    run(TOY, seeds=2, epochs=2)
    err = capsys.readouterr().err
    assert "toy (quick)" in err and "4/4" in err  # the sweep
    for name in ("same seed 0", "same seed 1", "circular seed 0", "circular seed 1"):
        assert name in err  # one bar per run, counting epochs
    assert "2/2" in err
