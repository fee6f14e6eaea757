"""Every ``--out`` is checked before any work (one clear error, exit 2), ``diagram --out`` writes what was asked
(a folder gets diagram.svg inside it, .pdf a PDF, anything else is refused), and tracing's refusal hint names
something the user can do."""

import importlib
import json
import os
import textwrap

import pytest

from edgewise import models
from edgewise.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _no_work(monkeypatch):
    """Fail the test if any command starts its work: loading a model, counting, scaling, training, drawing,
    building a report."""
    def fail(*a, **k):
        pytest.fail("work started before --out was checked")

    monkeypatch.setattr(models, "load", fail)
    for module, name in (("edgewise.scaling", "scaling"), ("edgewise.experiments", "run"),
                         ("edgewise.report.diagram", "_prepare"), ("edgewise.report.builder", "gather"),
                         ("edgewise.report.explore", "explore_config")):
        monkeypatch.setattr(importlib.import_module(module), name, fail)  # edgewise.scaling is also a function


# every command that takes --out, with the arguments it needs to run
COMMANDS = {
    "paths": ["paths", "4*conv3", "--input", "1x9"],
    "rf": ["rf", "4*conv3", "--input", "1x9"],
    "sensitivity": ["sensitivity", "4*conv3", "--input", "1x9", "--inits", "2"],
    "scaling": ["scaling", "conv3", "--depths", "1:3"],
    "remedies": ["remedies", "4*conv3", "--input", "1x9"],
    "answer": ["answer", "4*conv3", "--input", "1x9", "--inits", "2"],
    "experiment": ["experiment", "border-1d", "--seeds", "1", "--no-progress"],
    "visualize": ["visualize", "2*conv3", "--input", "1x8x8", "--layer", "conv1", "--steps", "1"],
    "report": ["report", "4*conv3", "--input", "1x12", "--no-progress"],
    "explore": ["explore", "4*conv3", "--input", "1x9"],
}


def _error(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (code, err)
    assert out == "" and "Traceback" not in err
    assert err.startswith(f"edgewise {argv[0]}: error: ")
    return err


@pytest.mark.parametrize("command", COMMANDS)
def test_out_that_is_a_file_is_refused_before_any_work(command, tmp_path, monkeypatch, capsys):
    target = tmp_path / "results.txt"
    target.write_text("mine")
    _no_work(monkeypatch)
    err = _error(capsys, COMMANDS[command] + ["--out", str(target)])
    assert f"--out {target} is a file; give a folder" in err
    assert target.read_text() == "mine"


@pytest.mark.parametrize("command", COMMANDS)
def test_out_below_a_file_is_refused_before_any_work(command, tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("mine")
    _no_work(monkeypatch)
    err = _error(capsys, COMMANDS[command] + ["--out", str(tmp_path / "file" / "results")])
    assert f"{tmp_path / 'file'} is a file, so no folder can be made there" in err


@pytest.mark.parametrize("command", COMMANDS)
def test_out_in_an_unwritable_folder_is_refused_before_any_work(command, tmp_path, monkeypatch, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access
    # root writes anywhere, so the permission is denied by os.access itself (what the check asks)
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: os.fspath(p) != str(locked) and real(p, mode, *a, **k))
    _no_work(monkeypatch)
    err = _error(capsys, COMMANDS[command] + ["--out", str(locked / "new" / "results")])
    assert f"cannot write in {locked}" in err and "choose another --out" in err
    assert not (locked / "new").exists()


def test_experiment_default_folder_is_checked_too(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").write_text("a file where out/experiments/TASK would go")
    _no_work(monkeypatch)
    err = _error(capsys, COMMANDS["experiment"])
    assert "out is a file, so no folder can be made there" in err


# ------------------------------------------------------------------ diagram

def test_diagram_into_a_new_folder_with_a_trailing_slash(tmp_path, capsys):
    folder = tmp_path / "figs"
    assert main(["diagram", "--out", f"{folder}/"]) == 0
    out = capsys.readouterr().out
    assert (folder / "diagram.svg").read_text().lstrip().startswith("<?xml")
    assert (folder / "diagram.png").read_bytes().startswith(PNG_MAGIC)
    assert f"wrote {folder / 'diagram.svg'}" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figs"]  # nothing written beside the folder


def test_diagram_into_an_existing_folder(tmp_path, capsys):
    assert main(["diagram", "4*conv3", "--input", "1x9", "--out", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["svg"] == str(tmp_path / "diagram.svg") and doc["png"] == str(tmp_path / "diagram.png")
    assert (tmp_path / "diagram.svg").exists() and (tmp_path / "diagram.png").exists()
    assert not tmp_path.with_suffix(".svg").exists()


def test_diagram_pdf_is_written(tmp_path, capsys):
    target = tmp_path / "net.pdf"
    assert main(["diagram", "--out", str(target)]) == 0
    out = capsys.readouterr().out
    assert target.read_bytes().startswith(b"%PDF")
    assert (tmp_path / "net.svg").exists() and (tmp_path / "net.png").exists()
    assert f"wrote {target}" in out


@pytest.mark.parametrize("name", ["net.jpg", "net", "net.txt"])
def test_diagram_unsupported_suffix_is_refused_before_any_work(name, tmp_path, monkeypatch, capsys):
    _no_work(monkeypatch)
    err = _error(capsys, ["diagram", "--out", str(tmp_path / name)])
    assert ".svg, .png, .pdf" in err and "folder ending in '/'" in err
    assert list(tmp_path.iterdir()) == []


def test_diagram_below_a_file_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("mine")
    _no_work(monkeypatch)
    err = _error(capsys, ["diagram", "--out", str(tmp_path / "file" / "net.svg")])
    assert "is a file, so no folder can be made there" in err


def test_draw_diagram_refuses_an_unsupported_suffix_before_drawing(tmp_path, monkeypatch):
    from edgewise.errors import EdgewiseError
    from edgewise.report import diagram

    monkeypatch.setattr(diagram, "_prepare", lambda *a, **k: pytest.fail("drew before checking out"))
    with pytest.raises(EdgewiseError, match=r"\.svg, \.png, \.pdf"):
        diagram.draw_diagram("4*conv3", (1, 9), out=tmp_path / "net.gif")


# ------------------------------------------------------------------ the tracing refusal hint

NET = """\
import torch
import torch.nn as nn


class Sort(nn.Module):
    def forward(self, x):
        return torch.sort(x, dim=3).values


def make_model():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), Sort(), nn.Conv2d(4, 4, 3))
"""


def test_refusal_hint_names_only_what_exists_and_following_it_works(tmp_path, capsys):
    path = tmp_path / "net.py"
    path.write_text(textwrap.dedent(NET))
    err = _error(capsys, ["rf", f"{path}:make_model", "--input", "1x8x8"])
    assert "uses torch.sort" in err and "(--layer on the command line)" in err, err
    hint = err.split("layer='")[1].split("'")[0]
    assert hint == "1"  # the ReLU before the op, by its named_modules() name
    # following the hint, on every command that takes a model
    for cmd in (["rf"], ["paths"], ["sensitivity", "--inits", "2"]):
        assert main([*cmd, f"{path}:make_model", "--input", "1x8x8", "--layer", hint, "--json"]) == 0, cmd
    capsys.readouterr()
