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


def test_a_model_with_random_weights_is_said_to_have_them(tmp_path, capsys):
    """`edgewise probe bias timm:resnet18` printed "Position explains 71 % of the activations' variance" of a
    network that never trained, without a word on its weights. A spec net, torchvision:NAME and timm:NAME are built
    at random: the probe says so, and the JSON records why; a file's model may be trained, and nothing is said."""
    from edgewise.models import random_weights

    assert main(["probe", "bias", *NET, "-n", "2", "--data", "digits", "--no-blind-spots", "--out",
                 str(tmp_path / "a"), "--no-progress"]) == 0
    said = capsys.readouterr()
    assert "note: conv3/c8, conv3/c8, gap, fc10 has random weights (a spec net, built at random): the probes " \
        "measure the architecture at initialisation, not what training taught it" in said.err
    assert json.loads((tmp_path / "a" / "bias.json").read_text())  # (the result is still written)
    doc = _run(capsys, "bias", *NET, "-n", "2", "--data", "digits", "--no-blind-spots", "--out", str(tmp_path / "b"))
    assert doc["random_weights"] == "a spec net, built at random"
    assert random_weights("torchvision:resnet18") == "built with weights=None"
    assert random_weights("timm:resnet18") == "built with pretrained=False"
    assert random_weights("pretrained:efficientnet-lite0") is None and random_weights("net.py:make") is None
    assert random_weights("experiment:digits") is None
    assert main(["sensitivity", "3*conv3", "--input", "1x12x12", "--weights"]) == 0  # (its header says it too)
    assert "model's weights (random: a spec net, built at random), 8 inputs" in capsys.readouterr().out


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
