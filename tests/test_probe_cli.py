"""`edgewise probe bias|units|readout|perturb`: results and figures under --out, JSON that matches the saved
result, a cache that makes the second run read instead of compute, and clear errors."""

import importlib
import json

import pytest

from edgewise.cli import main
from edgewise.probe import SpatialBias
from edgewise.testing.planted import planted_detector

NET = ["conv3/c8, conv3/c8, gap, fc10", "--input", "1x16x16"]


def _run(capsys, *argv) -> dict:
    assert main(["probe", *argv, "--json", "--no-progress"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("probe, extra, stems", [
    ("bias", ["--stride", "4"], ["bias", "blind_spots"]),
    ("units", ["--data", "photos"], ["units"]),
    ("readout", ["--remedies", "circular"], ["readout", "readout_constant", "readout_circular",
                                             "readout_circular_constant"]),
    ("perturb", ["--stride", "5", "--patch", "1,3", "--inits", "1"], ["perturb"]),
])
def test_each_probe_writes_its_result_figures_and_json(tmp_path, capsys, probe, extra, stems):
    out = tmp_path / probe
    doc = _run(capsys, probe, *NET, "-n", "4", "--data", "digits", *extra, "--out", str(out))
    assert doc["probe"] == probe and doc["input_shape"] == [1, 16, 16]
    for stem in stems:
        saved = json.loads((out / f"{stem}.json").read_text())
        assert doc[stem]["text"] and all(isinstance(s, str) for s in doc[stem]["text"])
        assert saved  # the JSON beside the figures is the result itself
    assert list(out.glob("*.png")), "no figure written"
    assert (out / "cache").is_dir()


def test_readout_on_a_constant_input_runs_once_per_variant(tmp_path, capsys):
    doc = _run(capsys, "readout", *NET, "-n", "4", "--data", "constant", "--remedies", "circular",
               "--out", str(tmp_path / "r"))
    assert {k for k in doc if k.startswith("readout")} == {"readout_constant", "readout_circular_constant"}
    assert any("0 exactly" in line for line in doc["readout_circular_constant"]["text"])


def test_the_text_is_printed_and_the_second_run_reads_the_cache(tmp_path, capsys, monkeypatch):
    out = tmp_path / "b"
    argv = ["probe", "bias", *NET, "-n", "4", "--data", "digits", "--no-blind-spots", "--out", str(out),
            "--no-progress"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    saved = SpatialBias.load(out, "bias")
    assert all(line in first for line in saved.text())  # every printed sentence is the result's own
    bias_module = importlib.import_module("edgewise.probe.bias")
    monkeypatch.setattr(bias_module, "_result", lambda *a, **k: pytest.fail("computed again, cache unused"))
    assert main(argv) == 0 and capsys.readouterr().out == first


def test_planted_units_from_a_file_reference(tmp_path, capsys):
    maker = tmp_path / "planted_net.py"
    maker.write_text("from edgewise.testing.planted import planted_detector\n"
                     "def make(padding='zeros'):\n    return planted_detector(padding)[0]\n"
                     "def circular():\n    return make('circular')\n")
    _, shape, (layer, channel) = planted_detector()
    doc = _run(capsys, "units", f"{maker}:make", "--input", "1x28x28", "-n", "8", "--data", "digits",
               "--out", str(tmp_path / "z"))
    assert doc["units"]["summary"]["units"] == 1
    assert doc["units"]["summary"]["strongest"]["layer"] == layer
    assert doc["units"]["summary"]["strongest"]["channel"] == channel
    assert "units_ablation" in doc
    doc = _run(capsys, "units", f"{maker}:circular", "--input", "1x28x28", "-n", "8", "--data", "digits",
               "--out", str(tmp_path / "c"))
    assert doc["units"]["summary"]["units"] == 0 and "units_ablation" not in doc
    assert doc["units"]["text"][0].startswith("No padding-aware unit found")


@pytest.mark.parametrize("argv, message", [
    (["bias", *NET, "-n", "0"], "-n 0: the number of inputs must be at least 1"),
    (["bias", "conv3/c8", "-n", "2"], "needs --input"),
    (["bias", *NET, "--target", "conv1:x"], "--target 'conv1:x': expected a class index"),
    (["bias", *NET, "--layer", "conv9", "-n", "2", "--no-blind-spots"], "no layer 'conv9'"),
    (["perturb", *NET, "--patch", "1,a"], "--patch '1,a': expected patch sides"),
    (["perturb", *NET, "--patch", "40", "-n", "2"], "patch"),
    (["readout", *NET, "--remedies", "circle", "-n", "2"], "circle"),
])
def test_bad_input_is_one_clear_line(tmp_path, capsys, argv, message):
    assert main(["probe", *argv, "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_help_lists_the_four_probes(capsys):
    with pytest.raises(SystemExit):
        main(["probe", "--help"])
    text = capsys.readouterr().out
    assert all(p in text for p in ("bias", "units", "readout", "perturb"))
