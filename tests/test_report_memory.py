"""The report on an ImageNet-sized model runs in bounded memory, and its measuring step says what it is doing.

ResNet-18 and ResNet-50 on 3×224×224 with every remedy's Monte-Carlo sensitivity took 10.5–12 GB before the
initialisations were chunked by the model's activation size and each remedy's passes were freed before
the next (the `global` remedy's gathered taps alone took about 1 GB per initialisation). The subprocess
here gets the address space of a process that has imported torch and the CLI plus 2 GiB, as in
``tests/test_limits.py``.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys

import pytest

from edgewise.report import builder

GiB = 1 << 30
_MAIN = "import sys; from edgewise.cli import main; sys.exit(main())"


_PEAK = ("import atexit, resource, sys; atexit.register(lambda: print('PEAK_RSS_KIB', "
         "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)); ")


def test_resnet50_224_report_peaks_under_two_gib_above_the_import(tmp_path):
    """The issue's case: ResNet-50 on 3×224×224 (every remedy) peaks less than 2 GiB of resident memory above a
    process that has only imported torch and the CLI (measured in the same way, in the same run)."""
    code = _PEAK + "import torch, edgewise.cli"
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    base = int(re.search(r"PEAK_RSS_KIB (\d+)", imported.stderr).group(1)) * 1024
    out = tmp_path / "r50"
    env = {k: v for k, v in os.environ.items() if k != "EDGEWISE_MEMORY"}
    r = subprocess.run([sys.executable, "-c", _PEAK + _MAIN, "report", "torchvision:resnet50", "--input",
                        "3x224x224", "--inits", "4", "--remedy-inits", "4", "--no-progress", "--out", str(out)],
                       capture_output=True, text=True, timeout=400, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    peak = int(re.search(r"PEAK_RSS_KIB (\d+)", r.stderr).group(1)) * 1024
    assert peak - base < 2 * GiB, f"{(peak - base) / GiB:.2f} GiB above the import"
    rows = {row["name"]: row for row in json.loads((out / "data" / "torchvision-resnet50" / "remedies.json")
                                                   .read_text())["rows"]}
    assert "error" not in rows["global"] and "sensitivity_center_corner_ratio" in rows["global"]


@pytest.mark.parametrize("arch", ["resnet18"])
def test_resnet_224_report_fits_in_import_plus_two_gib(baseline, tmp_path, arch):
    limit = baseline + 2 * GiB

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = {k: v for k, v in os.environ.items() if k != "EDGEWISE_MEMORY"}
    out = tmp_path / arch
    r = subprocess.run([sys.executable, "-c", _MAIN, "report", f"torchvision:{arch}", "--input", "3x224x224",
                        "--inits", "4", "--remedy-inits", "4", "--no-progress", "--out", str(out)],
                       capture_output=True, text=True, timeout=240, preexec_fn=cap, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    config = json.loads((out / "config.json").read_text())
    assert config["remedy_inits"] == 4 and "remedy_inits_capped" not in config  # given explicitly: not capped
    parts = config["seconds_per_part"]
    # the measuring step's time is split by engine, so config.json says which part took it
    for part in ("pathways", "sensitivity", "own-weights gradient", "remedy global"):
        assert any(part in k for k in parts), sorted(parts)
    saved = out / "data" / f"torchvision-{arch}" / "remedies.json"
    rows = {row["name"]: row for row in json.loads(saved.read_text())["rows"]} if saved.is_file() else None
    if rows is not None:
        assert "error" not in rows["global"]


def test_measuring_step_names_each_engine(tmp_path, monkeypatch):
    labels = []
    real = builder._Progress.label

    def record(self, text, key=None):
        labels.append(text)
        real(self, text, key)

    monkeypatch.setattr(builder._Progress, "label", record)
    report = builder.build("3*conv3", "1x10x10", out=tmp_path / "r", n_inits=4, remedy_inits=2, progress=False)
    measuring = [l for l in labels if l.startswith("measuring 3*conv3")]
    assert measuring[0] == "measuring 3*conv3 (pathways, sensitivity, perturbation, remedies)"  # the label kept
    subs = [l.split(" — ", 1)[1] for l in measuring[1:]]
    for expected in ("pathways", "receptive field", "sensitivity 0/4", "sensitivity 4/4", "own-weights gradient",
                     "perturbation"):
        assert expected in subs, subs
    remedies = [s for s in subs if s.startswith("remedy ")]
    assert any(re.fullmatch(r"remedy global \(\d+/\d+\)", s) for s in remedies), remedies
    assert any(re.fullmatch(r"remedy global \(\d+/\d+\), initialisations 2/2", s) for s in remedies), remedies
    # counters do not split the time per part: one key per engine
    parts = report.config["seconds_per_part"]
    assert "measuring 3*conv3 — sensitivity" in parts and not any(re.search(r" \d+/\d+$", k) for k in parts)


def test_large_models_cap_the_remedy_inits_unless_asked():
    big, small = builder.LARGE_ACTIVATIONS + 1, builder.LARGE_ACTIVATIONS
    assert builder._remedy_inits(32, None, [small]) == (32, None)
    n, why = builder._remedy_inits(32, None, [small, big])
    assert n == builder.LARGE_REMEDY_INITS and "--remedy-inits" in why and "32" in why
    assert builder._remedy_inits(32, 32, [big]) == (32, None)  # explicit: honoured
    assert builder._remedy_inits(4, None, [big]) == (4, None)  # already below the cap
