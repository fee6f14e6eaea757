"""``edgewise experiment``: the task list, a tiny sweep with its files and JSON, resuming, errors."""

import json

from edgewise.cli import main

TINY = ["--seeds", "2", "--set", "epochs=1", "--set", "n_train=64", "--set", "n_test=32", "--no-progress"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_names_every_task(capsys):
    code, out, _ = run(capsys, "experiment", "list")
    assert code == 0
    for name in ("absolute-position", "border-digits", "border-1d", "symmetry"):
        assert name in out


def test_tiny_sweep_writes_results_and_json(capsys, tmp_path):
    code, out, err = run(capsys, "experiment", "border-1d", "--remedies", "same,circular", *TINY,
                         "--out", str(tmp_path), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["remedies"] == ["same", "circular"] and doc["seeds"] == [0, 1] and doc["out"] == str(tmp_path)
    cell = doc["table"]["same"]["start"]
    assert set(cell) == {"mean", "interval", "n"} and cell["n"] == 2 and cell["interval"][0] <= cell["mean"]
    assert doc["contrast"]["splits"] == ["start", "middle"] and "runs" not in doc
    for name in ("config.json", "experiment.json", "table.md", "table.csv", "border-1d_accuracy.png",
                 "border-1d_border.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert len(list((tmp_path / "runs").glob("*.json"))) == 4
    assert json.loads((tmp_path / "config.json").read_text())["config"]["epochs"] == 1
    assert (tmp_path / "table.csv").read_text().splitlines()[0] == "remedy,split,mean,low,high,n"
    # again: every run comes from the cache, the table is the same
    code, out2, err = run(capsys, "experiment", "border-1d", "--remedies", "same,circular", *TINY,
                          "--out", str(tmp_path), "--json")
    assert code == 0 and json.loads(out2)["table"] == doc["table"]


def test_table_and_symmetry_notes(capsys, tmp_path):
    code, out, err = run(capsys, "experiment", "symmetry", *TINY, "--out", str(tmp_path))
    assert code == 0, err
    assert "init" in out and "constant" in out and "random" in out and "± " in out
    assert "constant: largest difference between two filters of a layer at any step 0," in out
    assert (tmp_path / "symmetry_symmetry.png").exists()


def test_errors_are_one_line_with_the_valid_names(capsys):
    code, out, err = run(capsys, "experiment", "border-digit")
    assert code == 2 and out == "" and "Traceback" not in err
    assert "unknown task 'border-digit'; did you mean 'border-digits'?" in err and "border-1d" in err
    code, _, err = run(capsys, "experiment", "border-1d", "--remedies", "same,circlar")
    assert code == 2 and "did you mean 'circular'?" in err and "Valid remedies:" in err
    code, _, err = run(capsys, "experiment", "border-1d", "--set", "epoch=1")
    assert code == 2 and "has no option 'epoch'" in err
    code, _, err = run(capsys, "experiment", "border-1d", "--set", "epochs")
    assert code == 2 and "--set expects KEY=VALUE" in err
