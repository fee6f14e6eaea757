"""``benchmarks/remedy_ab.py`` runs: a remedy's Monte-Carlo sensitivity in another checkout beside this one, both
timed and their maps compared (the timings themselves are not checked: timings never are in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "remedy_ab.py"


def test_remedy_ab_times_both_checkouts_and_writes_json(tmp_path):
    out = tmp_path / "ab.json"
    run = subprocess.run([sys.executable, str(SCRIPT), "--against", str(ROOT), "--model", "2*conv3, conv3/s2",
                          "--input", "2x16x16", "--inits", "2", "--repeats", "2", "--json", str(out)],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    row = json.loads(out.read_text())
    assert (row["remedy"], row["inits"], row["against_checkout"]) == ("global", 2, str(ROOT))
    for k in ("this", "against"):
        assert len(row[k]["times_s"]) == 2 and 0 < row[k]["min_s"] <= row[k]["median_s"]
    assert row["ratio_median"] > 0 and "the maps agree" in run.stdout


def test_remedy_ab_refuses_an_unknown_remedy(tmp_path):
    run = subprocess.run([sys.executable, str(SCRIPT), "--against", str(ROOT), "--remedy", "globl"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 2 and "unknown remedy 'globl'" in run.stderr and "global" in run.stderr


def test_remedy_ab_refuses_an_unknown_model_with_close_names(tmp_path):
    run = subprocess.run([sys.executable, str(SCRIPT), "--against", str(ROOT), "--model", "torchvision:resnt50"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 2 and "no model 'resnt50'" in run.stderr and "resnet50" in run.stderr
    assert "Traceback" not in run.stderr


def test_remedy_ab_times_a_whole_comparison(tmp_path):
    out = tmp_path / "ab.json"
    run = subprocess.run([sys.executable, str(SCRIPT), "--against", str(ROOT), "--model", "2*conv3, conv3/s2",
                          "--input", "2x16x16", "--inits", "2", "--repeats", "1", "--compare", "circular,reflect",
                          "--json", str(out)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    row = json.loads(out.read_text())
    assert row["remedy"] == "compare(original, circular, reflect)" and "the maps agree" in run.stdout
