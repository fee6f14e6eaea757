"""The ``edgewise`` command line: JSON shapes and values, tables, files, errors, the installed script."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edgewise
from edgewise import nets
from edgewise.cli import main

PASCAL = ["4*conv3", "--input", "1x9", "--padding", "valid", "--width", "1"]
PASCAL_ROW = [1, 4, 10, 16, 19, 16, 10, 4, 1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(capsys, *argv):
    """(exit status, stdout, stderr) of ``edgewise argv...`` run in-process."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv):
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    assert out.count("\n") == 1, "--json must print exactly one JSON document and nothing else on stdout"
    return json.loads(out)


def assert_one_line_error(code, out, err, *fragments):
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    first = err.strip().splitlines()[0]
    assert "error:" in first
    for f in fragments:
        assert f in err, f"{f!r} not in {err!r}"


# ------------------------------------------------------------------ paths

def test_paths_json_exact_pascal(capsys):
    doc = run_json(capsys, "paths", *PASCAL, "--exact")
    assert doc["counts"] == PASCAL_ROW
    assert all(isinstance(c, int) for c in doc["counts"])
    assert doc["shape"] == [9] and doc["exact"] is True
    assert doc["center"] == 19 and doc["edge"] == 1 and doc["corner"] == 1
    assert doc["model"] == "4*conv3" and doc["padding"] == "valid" and doc["layer"] == "conv4"
    assert doc["center_edge_ratio"] == pytest.approx(19)
    assert doc["min"] == pytest.approx(1) and doc["max"] == pytest.approx(19)


def test_paths_json_float_matches_exact(capsys):
    doc = run_json(capsys, "paths", *PASCAL)
    assert doc["exact"] is False
    np.testing.assert_allclose(doc["counts"], PASCAL_ROW, rtol=1e-9)


def test_paths_default_model_2d(capsys):
    doc = run_json(capsys, "paths")
    assert doc["model"] == nets.DEFAULT_SPEC
    assert doc["input_shape"] == list(nets.DEFAULT_INPUT)
    h, w = nets.DEFAULT_INPUT[1:]
    assert doc["shape"] == [h, w]
    assert len(doc["counts"]) == h and all(len(row) == w for row in doc["counts"])
    assert doc["center"] > doc["edge"] > doc["corner"] > 0
    assert doc["center_corner_ratio"] == pytest.approx(doc["center"] / doc["corner"], rel=1e-9)


def test_paths_to_position_and_layer(capsys):
    doc = run_json(capsys, "paths", "4*conv3", "-i", "1x12x12", "--padding", "valid", "--to", "0,0", "--exact")
    counts = np.array(doc["counts"], dtype=object)
    assert doc["to"] == [0, 0]
    assert counts[:9, :9].min() > 0 and not counts[9:, :].any() and not counts[:, 9:].any()  # 9x9 field
    doc = run_json(capsys, "paths", *PASCAL, "--layer", "conv2", "--exact", "--to", "center")
    assert doc["layer"] == "conv2" and doc["to"] == "center"
    assert doc["counts"] == [0, 0, 1, 2, 3, 2, 1, 0, 0]


def test_paths_table(capsys):
    code, out, err = run(capsys, "paths", *PASCAL, "--exact")
    assert code == 0
    assert "4*conv3" in out and "valid" in out and "center" in out and "19" in out and "19×" in out
    assert err == ""  # no spinner when stderr is not a terminal


def test_paths_out_files(capsys, tmp_path):
    code, out, err = run(capsys, "paths", *PASCAL, "--exact", "--out", str(tmp_path / "res"))
    assert code == 0
    files = {p.name: p for p in (tmp_path / "res").iterdir()}
    assert {"pathways.png", "pathways.json", "pathways.log10.npy", "pathways.counts.npy"} <= set(files)
    png = files["pathways.png"].read_bytes()
    assert len(png) > 1000 and png.startswith(PNG_MAGIC)
    assert json.loads(files["pathways.json"].read_text())["counts"] == PASCAL_ROW
    assert np.load(files["pathways.counts.npy"]).tolist() == PASCAL_ROW
    np.testing.assert_allclose(np.load(files["pathways.log10.npy"]), np.log10(PASCAL_ROW))
    assert "pathways.png" in out


def test_paths_out_with_json_keeps_stdout_clean(capsys, tmp_path):
    doc = run_json(capsys, "paths", "3*conv3", "-i", "1x8x8", "--out", str(tmp_path))
    assert doc["shape"] == [8, 8]
    assert (tmp_path / "pathways.png").stat().st_size > 0


# ------------------------------------------------------------------ rf

def test_rf_json(capsys):
    doc = run_json(capsys, "rf", "conv3/s2, conv3/s2", "-i", "1x32")
    names = [l["name"] for l in doc["layers"]]
    assert names[0] == "input" and "conv1" in names and "conv2" in names
    for layer in doc["layers"]:
        assert {"name", "size", "jump", "start"} <= set(layer)
    conv2 = doc["layers"][names.index("conv2")]
    assert conv2["size"] == [7] and conv2["jump"] == [4]
    assert [33] in doc["advice"]["even_input_sizes"]


def test_rf_table_and_advice(capsys, tmp_path):
    code, out, err = run(capsys, "rf", "conv3/s2, conv3/s2", "-i", "1x32", "--out", str(tmp_path))
    assert code == 0, err
    assert "conv2" in out and "Advice" in out and "33" in out
    assert (tmp_path / "receptive_field.png").read_bytes().startswith(PNG_MAGIC)
    assert json.loads((tmp_path / "receptive_field.json").read_text())["layers"][0]["name"] == "input"


def test_rf_default_model(capsys):
    code, out, err = run(capsys, "rf")
    assert code == 0 and "conv7" in out and "40×40" in out


# ------------------------------------------------------------------ diagram

def test_diagram_files_and_counts(capsys, tmp_path):
    target = tmp_path / "net.svg"
    code, out, err = run(capsys, "diagram", "4*conv3", "--input", "1x9", "--out", str(target))
    assert code == 0, err
    assert "1 4 10 16 19 16 10 4 1" in out
    assert target.read_text().lstrip().startswith("<?xml")
    assert (tmp_path / "net.png").read_bytes().startswith(PNG_MAGIC)
    doc = run_json(capsys, "diagram", "4*conv3", "--input", "1x9", "--padding", "reflect",
                   "--out", str(tmp_path / "reflect.svg"))
    assert doc["rows"][0]["name"] == "input" and len(doc["rows"]) == 5
    assert doc["rows"][0]["counts"] == [50, 97, 91, 85, 83, 85, 91, 97, 50]
    assert Path(doc["png"]).stat().st_size > 0


# ------------------------------------------------------------------ errors and flags

@pytest.mark.parametrize("argv, fragments", [
    (["paths", "4*conv3", "--input", "1x9x"], ["input shape '1x9x'"]),
    (["paths", "4*conv3"], ["needs --input"]),
    (["paths", "4*conv3x", "-i", "1x9"], ["bad spec", "unknown layer"]),
    (["paths", *PASCAL, "--to", "north"], ["--to 'north'"]),
    (["paths", *PASCAL, "--layer", "conv9"], ["no layer named 'conv9'"]),
    (["paths", "8*conv3", "-i", "1x9", "--padding", "valid"], ["too small"]),
    (["rf", "nosuchfile.py:make", "-i", "1x9"], ["does not exist"]),
    (["diagram", "4*conv3", "--input", "1x9x9"], ["1-D"]),
    (["diagram", "conv3", "--input", "1x200"], ["at most 40"]),
    (["diagram", "res(conv3, conv3)", "--input", "1x9", "--padding", "same"], ["chain"]),
])
def test_errors_exit_2_with_a_clear_message(capsys, argv, fragments):
    assert_one_line_error(*run(capsys, *argv), *fragments)


def test_error_is_one_line_for_simple_errors(capsys):
    code, out, err = run(capsys, "paths", "4*conv3", "--input", "1x9x")
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_debug_shows_traceback(capsys):
    code, out, err = run(capsys, "paths", "4*conv3", "--input", "1x9x", "--debug")
    assert code == 2 and "Traceback" in err


def test_argparse_errors_and_flags(capsys):
    with pytest.raises(SystemExit) as e:
        main(["paths", "--padding", "sideways"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and edgewise.__version__ in capsys.readouterr().out
    code, out, err = run(capsys)
    assert code == 2 and "paths" in err and out == ""
    for cmd in ("paths", "rf", "diagram"):
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0 and "--json" in capsys.readouterr().out


def test_installed_console_script():
    script = Path(sys.executable).with_name("edgewise")
    script = str(script) if script.exists() else shutil.which("edgewise")
    if script is None:
        pytest.skip("the edgewise console script is not installed (pip install -e .)")
    proc = subprocess.run([script, "paths", *PASCAL, "--exact", "--json"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["counts"] == PASCAL_ROW


@pytest.mark.parametrize("spec, shape, padding", [("conv3/s2", "1x16", "valid"), ("3*conv3", "1x10x10", "circular"),
                                                  ("conv3/s2, conv3", "1x12x12", "valid"),
                                                  ("4*conv3", "1x9", "same")])
def test_paths_table_words_are_the_maps(spec, shape, padding, capsys):
    """The spread is said in edgewise.facts' words (uniform = max = min; max/min over the positions read), and a
    centre/border ratio whose mean takes in unread points says how many: each checked on the counted map."""
    code, out, _ = run(capsys, "paths", spec, "--input", shape, "--padding", padding)
    assert code == 0
    rows = dict(re.findall(r"^  (center / \w+|spread|unread)\s{2,}(.*?)\s*$", out, re.M))
    dims = tuple(int(v) for v in shape.split("x"))
    counts = edgewise.pathways(nets.from_spec(spec, dims, padding=padding), dims).counts
    read = counts[counts > 0]
    if read.max() == read.min() and read.size == counts.size:
        assert rows["spread"] == "uniform: every position has the same count (max = min)"
    else:
        where = "all positions" if read.size == counts.size else f"the {read.size} positions read"
        assert rows["spread"] == f"max/min {read.max() / read.min():.3g}× over {where}"
    assert ("unread" in rows) == (read.size < counts.size)
    if counts.ndim == 1:
        ends = int(counts[0] == 0) + int(counts[-1] == 0)
        assert ("of its 2 ends" in rows["center / edge"]) == bool(ends)
        if ends:
            assert f"{ends} of its 2 ends ha{'s' if ends == 1 else 've'} no path" in rows["center / edge"]
            assert rows["unread"] == "1 sample has no path (the last sample, 15)"
    else:
        h, w = counts.shape
        corners = sum(counts[i, j] == 0 for i in (0, h - 1) for j in (0, w - 1))
        mids = sum(counts[p] == 0 for p in ((0, (w - 1) // 2), (h - 1, (w - 1) // 2), ((h - 1) // 2, 0),
                                             ((h - 1) // 2, w - 1)))
        assert (f"{corners} of its 4 corners" in rows["center / corner"]) == bool(corners)
        assert (f"{mids} of its 4 mid-edges" in rows["center / edge"]) == bool(mids)
        assert corners in (0, 3) and mids in (0, 2)


def test_a_gaussian_fit_the_map_does_not_support_is_said_so(capsys, monkeypatch):
    """timm's SE-ResNet-18, 93 % of whose pixels have zero sensitivity, printed "Gaussian sigma (px) 2.49, 24.47"
    while the fit's own note said its peak lay outside the map. The note is printed beside it, with the widths by
    moments; a fit without a note prints alone."""
    from edgewise import sensitivity as S
    from edgewise.cli import main

    argv = ["sensitivity", "3*conv3", "--input", "1x12x12", "--inits", "2"]
    assert main(argv) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "Gaussian sigma" in ln)
    assert "not to be trusted" not in line
    real = S.map_metrics
    monkeypatch.setattr(S, "map_metrics", lambda *a, **k: {**real(*a, **k), "gaussian_note": "the fitted peak "
                                                           "along axis 1 lies outside the map (mean -124)"})
    assert main(argv) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "Gaussian sigma" in ln)
    assert re.search(r"\(fit not to be trusted: the fitted peak along axis 1 lies outside the map \(mean -124\); "
                     r"by moments \d+\.\d\d, \d+\.\d\d\)$", line.rstrip()), line


# ------------------------------------------------------------------ progress on a terminal

class _Spinner:
    """Stands in for rich's status spinner: records its messages."""

    def __init__(self, shown: list, message: str):
        self.shown = shown
        shown.append(message)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, message: str) -> None:
        self.shown.append(message)


def test_the_spinner_says_which_part_of_a_long_command_runs(capsys, monkeypatch, tmp_path):
    """`answer` ran a minute under one unchanging line, and `sensitivity` with no spinner at all while it drew its
    initialisations; both now say what they are at (on a terminal)."""
    import edgewise.cli as cli

    shown: list[str] = []
    monkeypatch.setattr(cli, "_progress", lambda err, message: _Spinner(shown, message))
    code, _, err = run(capsys, "sensitivity", "3*conv3", "--input", "1x12x12", "--inits", "4")
    assert code == 0, err
    assert "sensitivity at initialisation: 4/4 initialisations…" in shown, shown
    shown.clear()
    code, _, err = run(capsys, "answer", "3*conv3", "--input", "1x12x12", "--inits", "2", "--out",
                       str(tmp_path))
    assert code == 0, err
    for part in ("pathways", "sensitivity 2/2", "perturbation", "remedy circular"):
        assert any(s.startswith(f"computing the answer: {part}") for s in shown), (part, shown)
