"""User mistakes get one clear error (exit 2 on the command line), never an internal error or a silent exit 0."""

import json
import multiprocessing as mp

import numpy as np
import pytest

from edgewise import EdgewiseError, nets
from edgewise.cli import main
from edgewise.experiments import Experiment, run
from edgewise.experiments.backends import run_jobs
from edgewise.testing.toy_task import TOY


def cli(capsys, *argv):
    """(exit status, stderr) of ``edgewise argv...``; the error must be one clear line, no traceback."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "internal error" not in err and "Traceback" not in err
    return code, err


def assert_error(capsys, argv, *fragments):
    code, err = cli(capsys, *argv)
    assert code == 2, err
    first = err.strip().splitlines()[0]
    assert "error:" in first
    for f in fragments:
        assert f in err, (f, err)


# ---------------------------------------------------------------- 1. task options


@pytest.mark.parametrize("option, fragments", [
    ("epochs=abc", ["option epochs='abc' must be an integer, not str", "--set epochs=3"]),
    ("lr=nan", ["option lr='nan' must be a number", "--set lr=0.02"]),
    ("lr=NaN", ["option lr=nan must be a finite number"]),
    ("lr=-0.1", ["option lr=-0.1 must be above 0"]),
    ("batch_size=0", ["option batch_size=0 must be at least 1", "--set batch_size=16"]),
    ("epochs=0", ["option epochs=0 must be at least 1"]),
    ("n_train=-5", ["option n_train=-5 must be at least 1"]),
    ("epochs=2.5", ["option epochs=2.5 must be an integer, not float"]),
    ("model=3", ["option model=3 must be a string, not int"]),
    ("data_seed=-1", ["option data_seed=-1 must not be negative"]),
])
def test_bad_task_options_are_refused_before_anything_is_written(option, fragments, tmp_path):
    key, _, value = option.partition("=")
    parsed = json.loads(value) if value not in ("abc", "nan") else value
    with pytest.raises(EdgewiseError) as e:
        run(TOY, out=tmp_path / "o", progress=False, **{key: parsed})
    for f in fragments:
        assert f in str(e.value)
    assert not (tmp_path / "o" / "config.json").exists() and not (tmp_path / "o").exists()


@pytest.mark.parametrize("option, fragment", [
    ("epochs=abc", "option epochs='abc' must be an integer"),
    ("lr=nan", "option lr='nan' must be a number"),
    ("batch_size=0", "option batch_size=0 must be at least 1"),
    ("epochs=0", "option epochs=0 must be at least 1"),
])
def test_cli_bad_set_exits_2_and_writes_nothing(capsys, tmp_path, option, fragment):
    out = tmp_path / "o"
    assert_error(capsys, ["experiment", "absolute-position", "--set", option, "--out", str(out), "--no-progress"],
                 fragment, "the default")
    assert not (out / "config.json").exists()


def test_good_options_still_resolve():
    config = TOY.config("quick", lr=1, epochs=2)
    assert config["lr"] == 1.0 and isinstance(config["lr"], float) and config["epochs"] == 2


def test_per_axis_options_take_lists_of_checked_integers():
    from edgewise.experiments import tasks

    digits, signals = tasks.get("border-digits"), tasks.get("border-1d")
    assert digits.config("quick", canvas=[16, 20])["canvas"] == [16, 20]
    with pytest.raises(EdgewiseError, match="option canvas=0 must be at least 1"):
        digits.config("quick", canvas=[16, 0])
    with pytest.raises(EdgewiseError, match=r"option canvas=\[80\] must be an integer, not list"):
        signals.config("quick", canvas=[80])


def test_an_option_named_like_a_parameter_of_run(tmp_path):
    from edgewise.experiments import tasks

    task = tasks.get("absolute-position")
    assert task.config("quick", size=16)["size"] == 16
    with pytest.raises(EdgewiseError, match="option size=0 must be at least 1"):
        run(task, options={"size": 0}, progress=False)


# ---------------------------------------------------------------- 2. remedies, seeds


def test_empty_remedies_is_a_clear_error(capsys, tmp_path):
    assert_error(capsys, ["experiment", "absolute-position", "--remedies", "", "--out", str(tmp_path / "o")],
                 "no remedy given", "leave --remedies out")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv, fragment", [
    (["sensitivity", "2*conv3", "--input", "1x8", "--inits", "2", "--seed", "-1"], "--seed -1: a random seed"),
    (["answer", "2*conv3", "--input", "1x8", "--seed", "-3"], "--seed -3: a random seed"),
    (["experiment", "absolute-position", "--seeds", "0"], "--seeds 0: the number of seeds must be at least 1"),
    (["experiment", "absolute-position", "--seeds", "-1"], "--seeds -1"),
    (["report", "2*conv3", "--input", "1x8", "--seed", "-1"], "--seed -1"),
    (["report", "2*conv3", "--input", "1x8", "--seeds", "0"], "--seeds 0"),
    (["visualize", "2*conv3", "--input", "1x8", "--layer", "conv1", "--seeds", "0"], "--seeds 0"),
    (["visualize", "2*conv3", "--input", "1x8", "--layer", "conv1", "--seed", "-2"], "--seed -2"),
])
def test_negative_seeds_are_refused(capsys, tmp_path, monkeypatch, argv, fragment):
    monkeypatch.chdir(tmp_path)
    assert_error(capsys, argv, fragment)
    assert not any(tmp_path.iterdir())  # refused before any work


# ---------------------------------------------------------------- 3. --std


@pytest.mark.parametrize("std", ["0", "-1", "nan", "inf"])
def test_sensitivity_std_must_be_positive_and_finite(capsys, std):
    assert_error(capsys, ["sensitivity", "2*conv3", "--input", "1x8", "--inits", "2", "--std", std],
                 f"std={float(std)!r}", "positive finite number")


def test_std_in_the_api():
    from edgewise.sensitivity import init_sensitivity, reinitialise

    with pytest.raises(EdgewiseError, match="std=0.0: .*positive finite"):
        init_sensitivity("2*conv3", (1, 8), n_inits=2, std=0.0)
    with pytest.raises(EdgewiseError, match="std=-0.5"):
        reinitialise("2*conv3", std=-0.5, input_shape=(1, 8))
    assert init_sensitivity("2*conv3", (1, 8), n_inits=2, std=0.5).std == 0.5


# ---------------------------------------------------------------- 4. spec numbers


@pytest.mark.parametrize("spec, why, caret", [
    ("conv3/c0", "asks for 0 channels; /cN must be at least 1", "^^^^^^^^"),
    ("conv3, conv3/s2/c0", "asks for 0 channels", "       ^^^^^^^^^^^"),
    ("conv0", "sizes, strides and dilations must be at least 1", "^^^^^"),
    ("conv3/s0", "must be at least 1", "^^^^^^^^"),
    ("conv3/d0", "must be at least 1", "^^^^^^^^"),
    ("conv3, fc0", "must be at least 1", "       ^^^"),
    ("maxpool2/c0", "maxpool takes no /d or /c option", "^^^^^^^^^^^"),
])
def test_spec_refuses_zero_numbers(spec, why, caret):
    with pytest.raises(EdgewiseError) as e:
        nets.from_spec(spec, (1, 16))
    lines = str(e.value).splitlines()
    assert lines[0].startswith("bad spec:") and why in lines[0]
    assert lines[1] == f"  {spec}" and lines[2] == f"  {caret}"


def test_spec_zero_channels_on_the_cli(capsys):
    assert_error(capsys, ["paths", "conv3/c0", "--input", "1x16"], "bad spec", "0 channels")


# ---------------------------------------------------------------- 5. Ctrl-C with the process pool


def test_interrupt_during_a_process_pool_run_propagates_and_stops_the_workers():
    config = TOY.config("quick", epochs=200, n_train=256)  # long enough that runs are still going when interrupted
    jobs = [{"index": i, "task": TOY, "config": config, "remedy": "same", "seed": i, "key": str(i), "threads": 1,
             "checkpoint": None} for i in range(4)]
    before = set(mp.active_children())

    def on_progress(i, done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_jobs(jobs, "process", 2, on_progress, lambda i, result: None)
    assert not [p for p in mp.active_children() if p not in before and p.is_alive()]


# ---------------------------------------------------------------- 6. reversed numpy views


def test_variants_accept_reversed_views():
    from edgewise.variants import convolve, correlate, fft_convolve

    x, k = np.arange(30.).reshape(5, 6), np.arange(9.).reshape(3, 3)
    np.testing.assert_allclose(correlate(x, k[::-1, ::-1]), convolve(x, k))
    np.testing.assert_allclose(correlate(x[::-1], k), correlate(np.ascontiguousarray(x[::-1]), k))
    np.testing.assert_allclose(fft_convolve(x, k[::-1, ::-1], "full"), convolve(x, k[::-1, ::-1], "full"),
                               atol=1e-9)


# ---------------------------------------------------------------- 7. damaged experiment.json


def test_damaged_experiment_json_names_the_file(tmp_path):
    exp = run(TOY, seeds=1, out=tmp_path, progress=False, epochs=1)
    assert Experiment.load(tmp_path).text() == exp.text()
    path = tmp_path / "experiment.json"
    good = json.loads(path.read_text())
    for doc, fragment in [("{not json", "cannot read the experiment"),
                          ("[1, 2]", "a JSON list, not an object"),
                          (json.dumps({**good, "runs": "x"}), "'runs' is missing or not a list"),
                          (json.dumps({k: v for k, v in good.items() if k != "task"}), "'task' is missing"),
                          (json.dumps({**good, "runs": [{**good["runs"][0], "metrics": {"accuracy": {"test": "x"}}}]}),
                           "run 0's accuracies are not finite numbers")]:
        path.write_text(doc)
        with pytest.raises(EdgewiseError) as e:
            Experiment.load(path)
        assert str(path) in str(e.value) and fragment in str(e.value), str(e.value)
    with pytest.raises(EdgewiseError, match="the experiment document is not an edgewise experiment"):
        Experiment.from_dict({"task": "toy"})


def test_hand_edited_cached_run_missing_a_split_is_run_again(tmp_path):
    run(TOY, seeds=1, out=tmp_path, progress=False, epochs=1, remedies="same")
    (record,) = (tmp_path / "runs").glob("*.json")
    doc = json.loads(record.read_text())
    del doc["metrics"]["accuracy"]["train"]
    record.write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match="no accuracy on train"):
        exp = run(TOY, seeds=1, out=tmp_path, progress=False, epochs=1, remedies="same")
    assert set(exp.runs[0]["metrics"]["accuracy"]) == {"test", "train"}
