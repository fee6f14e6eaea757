"""``benchmarks/weighted.py`` runs: the weighted paths beside the sensitivity, the draws, plain gradient passes and
another checkout's weighted paths, their maps compared (the timings themselves are not checked: timings never are
in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_weighted_benchmark_times_every_part_and_compares_the_maps(tmp_path):
    out = tmp_path / "weighted.json"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "weighted.py"), "--models", "resnet18:16",
                          "--inits", "2", "--repeats", "1", "--against", str(ROOT), "--json", str(out)],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    (row,) = json.loads(out.read_text())["results"]
    assert (row["model"], row["input"], row["n_inits"]) == ("torchvision:resnet18", [3, 16, 16], 2)
    assert set(row["seconds"]) == {"weighted", "against", "sensitivity", "draws", "gradient"}
    assert row["agree"] and -1 <= row["log_correlation"] <= 1 and "maps agree: True" in run.stdout
