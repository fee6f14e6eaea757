"""``benchmarks/cold_ab.py`` runs: another checkout's package loads beside this one and both are timed (the numbers
themselves are not checked: timings never are in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_cold_ab_times_both_checkouts_and_writes_json(tmp_path):
    out = tmp_path / "ab.json"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "cold_ab.py"), "--against", str(ROOT),
                          "--models", "resnet18", "--size", "32", "--repeats", "2", "--part", "all", "count",
                          "--json", str(out)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [(r["model"], r["part"]) for r in rows] == [("resnet18", "all"), ("resnet18", "count")]
    for r in rows:
        for k in ("this", "against"):
            assert len(r[k]["times_s"]) == 2 and 0 < r[k]["min_s"] <= r[k]["median_s"]
        assert r["ratio_median"] > 0
    assert "resnet18" in run.stdout and "ratio" in run.stdout


def test_cold_ab_refuses_a_folder_without_edgewise(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "cold_ab.py"), "--against", str(tmp_path),
                          "--repeats", "1"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode != 0 and "has no edgewise package" in run.stderr


def test_cold_ab_names_close_models_for_an_unknown_one(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "cold_ab.py"), "--against", str(ROOT),
                          "--models", "densenet12"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 2 and "unknown torchvision model 'densenet12'" in run.stderr
    assert "densenet121" in run.stderr
