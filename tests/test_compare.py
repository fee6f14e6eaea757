"""remedies.compare and `edgewise remedies`: every remedy measured beside the original."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgewise import EdgewiseError, nets, remedies
from edgewise.cli import main


def test_compare_measures_every_remedy():
    shape = (1, 24, 24)
    c = remedies.compare(nets.from_spec("2*conv3, maxpool2, 2*conv3", shape), shape, progress=False)
    rows = {r["name"]: r for r in c.rows}
    assert list(rows) == ["original", *remedies.names()]
    assert rows["circular"]["center_corner_ratio"] == pytest.approx(1.0)
    assert rows["valid"]["center_corner_ratio"] > rows["original"]["center_corner_ratio"] > 1
    assert rows["global"]["center_corner_ratio"] < rows["original"]["center_corner_ratio"]
    assert rows["coordconv"]["parameters_change"] > 0 and rows["same"]["multiply_adds_change"] == 0
    assert rows["full"]["output_shape"][1] > rows["original"]["output_shape"][1]
    assert set(c.maps) == set(rows)


def test_remedies_that_do_not_fit_get_an_error_row():
    tv = pytest.importorskip("torchvision")
    c = remedies.compare(tv.models.resnet18(weights=None), (3, 32, 32), ["same", "valid"], progress=False)
    assert "error" in c.rows[2] and c.rows[1]["changed_layers"] == 17
    with pytest.raises(EdgewiseError, match="unknown remedy 'sam'; did you mean 'same'"):
        remedies.compare("conv3", (1, 8, 8), ["sam"])


def test_compare_with_sensitivity_maps(tmp_path, capsys):
    shape = (1, 16, 16)
    c = remedies.compare("3*conv3", shape, ["circular", "global"], n_inits=4, progress=False)
    assert set(c.sensitivity) == {"original", "circular", "global"}
    assert c.sensitivity["circular"].shape == (16, 16) and "sensitivity_center_corner_ratio" in c.rows[1]
    assert main(["remedies", "3*conv3", "--input", "1x16x16", "--remedies", "circular", "--inits", "4", "--out",
                 str(tmp_path)]) == 0
    assert "sens." in capsys.readouterr().out and (tmp_path / "remedies_sensitivity.png").exists()


def test_a_sensitivity_ratio_of_zero_over_zero_is_explained_under_the_table():
    """timm's SE-ResNet-18 at 32 px has exactly zero sensitivity at its centre and corners (its branches start
    silent); the table's sens. cell read "0/0" with nothing to say what that means. The legend says it where a
    0/0 is shown, and only there."""
    import math
    from dataclasses import replace

    from edgewise.report.tables import remedy_rows

    shape = (1, 16, 16)
    c = remedies.compare("3*conv3", shape, ["circular"], n_inits=4, progress=False)
    said = "(0/0: exactly 0 at the centre and at every corner)"
    assert said not in remedy_rows(c).notes[0]
    rows = [dict(r) for r in c.rows]
    rows[1]["sensitivity_center_corner_ratio"] = math.nan  # (what a map zero at the centre and corners gives)
    table = remedy_rows(replace(c, rows=rows))
    assert said in table.notes[0] and table.rows[1][table.headers.index("sens.")] == "0/0"


def test_multiply_adds_counts_every_weight_use():
    net = nets.from_spec("conv3/c4", (1, 10, 10), padding="valid")
    assert remedies.multiply_adds(net, (1, 10, 10)) == 8 * 8 * 4 * 9


def test_cli_remedies(tmp_path, capsys):
    assert main(["remedies", "3*conv3", "--input", "1x16", "--remedies", "same,full,global", "--out",
                 str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "global" in text and "paths" in text and (tmp_path / "remedies.png").exists()
    assert main(["remedies", "3*conv3", "--input", "1x16", "--remedies", "reflect", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in doc["rows"]] == ["original", "reflect"]
    assert main(["remedies", "3*conv3", "--input", "1x16", "--remedies", "nope"]) == 2
    assert "Valid remedies: valid, same" in capsys.readouterr().err


@pytest.mark.parametrize("spec, shape", [("conv64/s4, conv64/s4", "1x256"), ("conv3/s2, 2*conv3, maxpool2, conv3",
                                                                           "1x21x21")])
def test_every_word_edgewise_remedies_prints_is_its_saved_data(spec, shape, tmp_path, capsys):
    """The table's ratios and effects and the notes on unread corners, read back from what --out saved
    (edgewise.testing.claims.check_remedies_output); the question's net has every kind of effect."""
    from edgewise.testing.claims import check_remedies_output

    assert main(["remedies", spec, "--input", shape, "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert check_remedies_output(text, tmp_path) == []
    if spec.startswith("conv64"):
        for effect in ("uniform", "balanced at the anchors", "over-corrects (21.5× at the edge)", "never reads 31",
                       "centre-heavy"):
            assert f" {effect} " in text
        assert "nonoverlapping: 1 of its 2 edges has no path" in text


def test_a_fabricated_remedies_output_fails(tmp_path, capsys):
    from edgewise.testing.claims import check_remedies_output

    assert main(["remedies", "conv64/s4, conv64/s4", "--input", "1x256", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    circular = next(i for i, line in enumerate(lines) if line.startswith("│ circular"))
    wrong = {"never reads 31": "never reads 30", "   3.43× │": "   3.53× │"}
    told = "\n".join(lines[:circular] + [lines[circular].replace("     uniform", "centre-heavy")] + lines[circular + 1:])
    for a, b in wrong.items():
        told = told.replace(a, b, 1)
    told = told.replace("nonoverlapping: 1 of its 2 edges has no path", "nonoverlapping: 2 of its 2 edges have no path")
    problems = check_remedies_output(told, tmp_path)
    assert any("circular is 'centre-heavy'" in p for p in problems)
    assert any("'never reads 30'" in p for p in problems)
    assert any("original's max/min as '3.53×'" in p for p in problems)
    assert any("nonoverlapping's centre unread=False and 2 corners" in p for p in problems)
    # and a saved map that no longer bears out the words printed beside it
    m = np.load(tmp_path / "remedy_comparison.log10_full.npy")
    m[0] += 0.25
    np.save(tmp_path / "remedy_comparison.log10_full.npy", m)
    assert any("full is 'uniform'" in p for p in check_remedies_output(text, tmp_path))


def test_ratios_with_an_end_at_zero_read_as_such_in_tables():
    """A zero centre printed "0.0" and a zero border "inf" among the table's "26.2×" ratios; now "0" and "∞", as
    the CLI's own summaries print them, and the sens. legend says what each means where one is shown."""
    import math

    from edgewise.report.tables import _zero_ends_legend, ratio_text
    from edgewise.testing.claims import _check_number

    assert [ratio_text(v) for v in (0.0, math.inf, math.nan, 2.5)] == ["0", "∞", "0/0", "2.5×"]
    assert _zero_ends_legend(["2×", "0", "∞"], "corner") == " (0: exactly 0 at the centre; ∞: exactly 0 at every corner)"
    assert _zero_ends_legend(["2×"], "end") == ""
    assert _check_number("∞", math.inf) and not _check_number("∞", 3.0) and _check_number("0", 0.0)
