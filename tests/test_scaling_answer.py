"""Depth scaling, the generated answer, and their command-line front ends."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from edgewise import EdgewiseError, theory
from edgewise.answer import answer
from edgewise.cli import main
from edgewise.scaling import parse_depths, scaling


def test_scaling_measures_exact_ratios_and_overlays_theory():
    s = scaling("conv3", "1:12", ("valid", "same", "circular", "reflect"), input_shape=(1, 40), progress=False)
    assert s.ratios["valid"][:5] == [3.0, 9.0, 27.0, 81.0, 243.0]
    assert s.ratios["circular"] == [1.0] * 12
    for L, r in zip(s.depths, s.ratios["same"]):
        assert r == pytest.approx(float(theory.same_ratio(3, 40, L)), rel=1e-12)
    assert s.laws["valid"]["kind"] == "exponential" and s.laws["valid"]["params"]["base"] == pytest.approx(3, rel=1e-3)
    assert s.laws["circular"]["kind"] == "uniform"
    assert s.theory_kind == {"valid": "exponential", "same": "sqrt-then-saturating", "circular": "uniform",
                             "reflect": "bounded"}


def test_scaling_2d_corner_is_the_square_of_the_1d_ratio():
    one = scaling("conv3", "1:4", ("same",), input_shape=(1, 16), progress=False).ratios["same"]
    two = scaling("conv3", "1:4", ("same",), input_shape=(1, 16, 16), progress=False).ratios["same"]
    np.testing.assert_allclose(two, np.square(one), rtol=1e-12)


def _depth_by_depth(block, depths, padding, shape):
    """The slow reference: every depth's stack built and counted whole."""
    from edgewise import nets
    from edgewise.pathways import pathways

    key = "corner" if len(shape) == 3 else "edge"
    ratios, flat = [], []
    for L in depths:
        try:
            p = pathways(nets.from_spec(f"{L}*{block}", shape, padding=padding, width=1, activation=None), shape,
                         exact=True)
        except EdgewiseError:
            ratios.append(math.nan)
            continue
        ratios.append(float(p.summary[f"center_{key}_ratio"]))
        counts = p.counts.ravel()
        flat.append(all(c == counts[0] for c in counts))
    return ratios, bool(flat) and all(flat)


@pytest.mark.parametrize("block, shape, depths", [("conv3", (1, 24), [1, 2, 3, 5, 8, 13, 21]),
                                                  ("conv4", (1, 17), "1:9"), ("conv5/d2", (1, 30), [2, 4, 9]),
                                                  ("conv3/s2", (1, 40), "1:7"), ("conv3", (1, 9, 11), "1:6"),
                                                  ("maxpool3", (1, 20), "1:4"), ("res(conv3)", (1, 12), "1:3")])
def test_grown_stacks_equal_stacks_counted_whole(block, shape, depths):
    from edgewise import nets

    # a residual block is no chain (counted whole); it needs a padding that keeps the shape
    paddings = ("same", "circular", "reflect") if block.startswith("res") else tuple(nets.PADDINGS)
    s = scaling(block, depths, paddings, input_shape=shape, progress=False)
    for padding in paddings:
        ratios, uniform = _depth_by_depth(block, s.depths, padding, shape)
        assert s.ratios[padding] == pytest.approx(ratios, rel=0, abs=0, nan_ok=True), padding  # bit for bit
        assert s.uniform[padding] == uniform, padding


def test_scaling_marks_vanished_outputs_and_checks_its_arguments():
    s = scaling("conv5", "1:6", ("valid",), input_shape=(1, 12), progress=False)
    assert math.isnan(s.ratios["valid"][-1])
    assert "<img" in s._repr_html_()
    assert parse_depths("1:7:3") == [1, 4, 7] and parse_depths("4,2,2") == [2, 4]
    with pytest.raises(EdgewiseError, match="START:STOP"):
        parse_depths("a:b")
    with pytest.raises(EdgewiseError, match="expected names from valid, same"):
        scaling("conv3", "1:3", ("zeros",))
    with pytest.raises(EdgewiseError, match="bad spec"):
        scaling("conv3/x2", "1:3", progress=False)
    with pytest.raises(EdgewiseError, match="one spec item"):
        scaling("2*conv3", "1:3")
    with pytest.raises(EdgewiseError, match=r"'torchvision:resnet18' is a model reference.*`edgewise paths "
                       r"torchvision:resnet18` gives its ratio"):  # (it said "bad spec: unknown layer")
        scaling("torchvision:resnet18", "1:3")


def test_answer_quotes_only_numbers_it_computed(tmp_path):
    a = answer("6*conv3", (1, 16, 16), out=tmp_path, n_inits=4)
    f = a.facts
    assert f"{f['paths']['center_corner_ratio']:.3g}" in a.text
    assert f["own_weights"]["random_weights"] == "a spec net, built at random"
    assert "**With this model's weights** (random: a spec net, built at random; 8 inputs)" in a.text
    half = f["own_weights"]["area_ratio"]["50"]  # (maps.area_ratio of the own-weights map)
    assert 0 < half <= 1 and f"half of the total sensitivity lies in the central {100 * half:.0f} % of" in a.text
    assert f["theory"]["exact_corner_ratio"] == pytest.approx(f["paths"]["center_corner_ratio"], rel=1e-12)
    assert f["alternatives"]["circular"]["center_corner_ratio"] == pytest.approx(1.0)
    assert f["alternatives"]["global"]["center_corner_ratio"] < f["paths"]["center_corner_ratio"]
    for link in ("pathways.png", "sensitivity_init.png", "perturbation.png", "remedies.png", "answer.json"):
        assert f"({link})" in a.text and (tmp_path / link).exists()
    assert json.loads((tmp_path / "answer.json").read_text())["model"] == "6*conv3"
    assert (tmp_path / "answer.md").read_text() == a.text
    assert a._repr_markdown_() == a.text and a._repr_html_() is None


def test_cli_scaling_answer_and_sensitivity(tmp_path, capsys):
    assert main(["scaling", "conv3", "--depths", "1:5", "--padding", "valid,same", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ratios"]["valid"] == [3.0, 9.0, 27.0, 81.0, 243.0]
    assert main(["scaling", "conv3", "--padding", "nope"]) == 2
    assert "expected names from" in capsys.readouterr().err
    assert main(["sensitivity", "3*conv3", "--input", "1x12x12", "--inits", "4", "--perturb", "--out",
                 str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "center / corner" in text and (tmp_path / "sensitivity.png").exists()
    assert "perturbation, its weights" in text and "perturbation, random init" in text
    assert (tmp_path / "perturbation_random.png").exists() and (tmp_path / "perturbation_weights.json").exists()
    assert main(["answer", "4*conv3", "--input", "1x12", "--inits", "4", "--out", str(tmp_path / "a")]) == 0
    assert "Is the effect real here?" in capsys.readouterr().out


def test_cli_scaling_says_uniform_from_the_counts_not_the_fit(capsys):
    """replicate and circular on L*conv3: every position's count is the same at every depth (max = min), which
    the line says from the exact counts; a ratio of 1 alone is only a fit's "ratio ≈ 1"."""
    assert main(["scaling", "conv3", "--depths", "1,2,4,8", "--padding", "valid,replicate,circular"]) == 0
    lines = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("  ")}
    result = scaling("conv3", [1, 2, 4, 8], ("valid", "replicate", "circular"), progress=False)
    for p in ("replicate", "circular"):
        assert result.uniform[p]
        assert "uniform: max = min at every depth (exact counts)" in lines[p]
    assert not result.uniform["valid"] and lines["valid"].split()[1] == "fitted:"


def test_cli_scaling_gives_theorys_limit_not_the_fits_last_ratio(capsys):
    """conv64 on 256 samples: same and reflect have no closed form but a deep limit (6.41, 1.89); the line gives
    it as theory's, and a bounded fit no longer says "→ 1.92" (its last ratio) beside it."""
    assert main(["scaling", "conv64", "-i", "1x256", "--padding", "same,reflect,valid"]) == 0
    lines = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("  ")}
    result = scaling("conv64", "1:64", ("same", "reflect"), input_shape=(1, 256), progress=False)
    for p in ("same", "reflect"):
        assert f"theory: no closed form, tending to {result.limits[p]:.3g} as L → ∞ (Perron vector)" in lines[p]
        assert "fitted: bounded (×" in lines[p] and "bounded →" not in lines[p]
    assert result.limits["reflect"] == pytest.approx(1.8936, rel=1e-4)
    assert lines["valid"].endswith("theory: exponential")
