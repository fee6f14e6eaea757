"""``benchmarks/trace_timm.py`` runs: two checkouts' first traces of timm families, taking turns (the numbers
themselves are not checked: timings never are in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = str(ROOT / "benchmarks" / "trace_timm.py")


def test_trace_timm_times_both_checkouts_and_writes_json(tmp_path):
    pytest.importorskip("timm")
    out = tmp_path / "trace.json"
    run = subprocess.run([sys.executable, SCRIPT, "--against", str(ROOT), "--models", "test_byobnet", "resnetv2_18",
                          "--repeats", "2", "--json", str(out)], capture_output=True, text=True, timeout=600,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())
    assert [r["model"] for r in result["rows"]] == ["test_byobnet", "resnetv2_18"]
    for r in result["rows"]:
        assert not r["errors"] and all(len(r["times_s"][k]) == 3 for k in "AB") and r["ratio"] > 0
        assert r["median_s"]["A"] > 0 and r["first_s"]["B"] > 0
    assert result["summary"]["timed"] == 2 and "test_byobnet" in run.stdout and "B/A" in run.stdout


def test_trace_timm_refuses_a_folder_without_edgewise_and_names_close_models(tmp_path):
    run = subprocess.run([sys.executable, SCRIPT, "--against", str(tmp_path)], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert run.returncode == 2 and "has no edgewise package" in run.stderr
    run = subprocess.run([sys.executable, SCRIPT, "--against", str(ROOT), "--models", "test_byobnt"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 2 and "no traced family 'test_byobnt'" in run.stderr and "test_byobnet" in run.stderr
