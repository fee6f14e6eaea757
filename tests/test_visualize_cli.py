"""``edgewise visualize``: figures, JSON, trained experiment nets as models, errors."""

import json

from edgewise.cli import main

SPEC = ["conv3/c4, conv3/c4, maxpool2, conv3/c4", "--input", "1x16x20"]
FAST = ["--steps", "8", "--seeds", "2", "--index-layers", "conv1,conv3", "--index-channels", "0"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_and_files(capsys, tmp_path):
    code, out, err = run(capsys, "visualize", *SPEC, "--layer", "conv3", "--channel", "1",
                         "--positions", "center,top_left,2:9", *FAST, "--out", str(tmp_path), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["layer"] == "conv3" and doc["channel"] == 1 and doc["input_shape"] == [1, 16, 20]
    assert [p["unit"] for p in doc["positions"]] == [[3, 4], [0, 0], [2, 9]]  # the map is 8x10 (row, col)
    assert doc["positions"][0]["similarity_to_reference"] == 1.0
    assert 0 < doc["positions"][1]["fraction_inside"] < 1 and doc["positions"][0]["fraction_inside"] == 1
    assert doc["index_vs_rf"]["layers"] == ["conv1", "conv3"]
    for name in ("visualize_grid.png", "visualize_tiled.png", "visualize_similarity.png",
                 "visualize_index_vs_rf.png", "position_dependence.json", "tiled.json", "index_vs_rf.json"):
        assert (tmp_path / name).stat().st_size > 0, name


def test_table_for_a_trained_experiment_net(capsys, tmp_path):
    code, out, err = run(capsys, "visualize", "experiment:border-digits:same:0", "--layer", "conv2",
                         "--positions", "center,top", *FAST[:4], "--index-layers", "none", "--out", str(tmp_path))
    assert code == 0, err
    assert "conv2 channel 0, input 1x28x28" in out and "position-dependence index" in out
    assert not (tmp_path / "visualize_index_vs_rf.png").exists()


def test_errors_are_one_line(capsys, tmp_path):
    code, out, err = run(capsys, "visualize", *SPEC, "--layer", "conv9", "--out", str(tmp_path))
    assert code == 2 and "has no layer 'conv9'" in err and "Traceback" not in err
    code, out, err = run(capsys, "visualize", *SPEC, "--layer", "conv3", "--positions", "9:0", *FAST,
                         "--out", str(tmp_path))
    assert code == 2 and "position (9, 0) is outside the feature map of 'conv3'" in err
    code, out, err = run(capsys, "visualize", "conv3, conv3", "--layer", "conv1")
    assert code == 2 and "needs --input" in err
    # one seed is refused before the model is loaded (it was refused after "maximising … × 1 seeds")
    code, out, err = run(capsys, "visualize", "no-such.py:make", "--layer", "conv1", "--seeds", "1")
    assert code == 2 and "--seeds 1: seeds must be at least 2" in err and "maximising" not in err
