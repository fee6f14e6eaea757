"""The report folder never loses a user's files and is never left half old, half new."""

import json

import pytest

from edgewise.cli import main
from edgewise.errors import EdgewiseError
from edgewise.report import builder, sections
from edgewise.report.builder import build

FAST = {"n_inits": 2, "remedy_inits": 0, "progress": False}


def test_a_folder_of_someone_elses_files_is_refused_before_any_work(tmp_path, monkeypatch):
    (tmp_path / "index.html").write_text("my own page")
    (tmp_path / "notes.txt").write_text("keep me")
    monkeypatch.setattr(builder, "gather", lambda *a, **k: pytest.fail("work started before the check"))
    with pytest.raises(EdgewiseError, match="not empty and holds no edgewise report.*--force"):
        build("4*conv3", (1, 12), out=tmp_path, **FAST)
    assert (tmp_path / "index.html").read_text() == "my own page" and (tmp_path / "notes.txt").exists()


def test_out_that_is_a_file_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    target = tmp_path / "report.html"
    target.write_text("x")
    monkeypatch.setattr(builder, "gather", lambda *a, **k: pytest.fail("work started before the check"))
    assert main(["report", "4*conv3", "--input", "1x12", "--out", str(target), "--no-progress"]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err


def test_force_replaces_a_foreign_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("replace me")
    r = build("4*conv3", (1, 12), out=tmp_path, force=True, **FAST)
    assert r.path == tmp_path / "index.html" and r.path.exists() and not (tmp_path / "notes.txt").exists()


def test_a_second_report_replaces_the_first_whole_and_keeps_the_cache(tmp_path):
    out = tmp_path / "r"
    first = build("4*conv3", (1, 12), out=out, **FAST)
    assert (out / "data" / "4-conv3").is_dir() and all(p.exists() for p in first.files)
    (out / "experiments" / "toy").mkdir(parents=True)
    (out / "experiments" / "toy" / "run.json").write_text("{}")  # a cached experiment run
    second = build("3*conv3", (1, 12), out=out, **FAST)
    assert not (out / "data" / "4-conv3").exists()  # no other model's data left behind
    assert (out / "data" / "3-conv3").is_dir()
    assert json.loads((out / "config.json").read_text())["models"] == ["3*conv3"]
    assert (out / "experiments" / "toy" / "run.json").exists()
    assert all(p.exists() and out in p.parents for p in second.files)
    assert [p.name for p in tmp_path.iterdir()] == ["r"]  # no staging or old folder left


def test_an_interrupted_report_leaves_the_previous_one_untouched(tmp_path, monkeypatch):
    out = tmp_path / "r"
    build("4*conv3", (1, 12), out=out, **FAST)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def interrupted(s, w):
        raise KeyboardInterrupt

    monkeypatch.setattr(sections, "remedies", interrupted)
    monkeypatch.setattr(builder, "SECTIONS", builder.SECTIONS[:-1] + (builder.SECTIONS[-1][:3] + (interrupted,),))
    with pytest.raises(KeyboardInterrupt):
        build("3*conv3", (1, 12), out=out, **FAST)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir()] == ["r"]
