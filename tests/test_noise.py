"""No noise in normal use: the CLI run with pipes (as in a log or CI) prints no Python warnings, no progress bars
(carriage returns, ANSI escapes) and tables at their full width."""

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import torch

from edgewise import sensitivity

ROOT = Path(__file__).resolve().parent.parent
EDGEWISE = [str(Path(sys.executable).parent / "edgewise")]  # the console script set-up installs into .venv/bin


def _run(*args, tmp=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "TQDM_DISABLE")}
    r = subprocess.run(EDGEWISE + list(args), cwd=tmp or ROOT, env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return r


def _quiet(stream: str) -> None:
    assert not re.search(r"\w*Warning\b", stream), stream
    assert "\r" not in stream and "\x1b" not in stream, repr(stream[-500:])


def test_sensitivity_of_a_torchvision_model_is_quiet_when_piped():
    r = _run("sensitivity", "torchvision:resnet18", "--input", "3x32x32", "--inits", "4")
    _quiet(r.stderr)
    _quiet(r.stdout)


def test_visualize_shows_no_progress_bars_when_piped(tmp_path):
    r = _run("visualize", "3*conv3", "--input", "1x16x16", "--layer", "conv3", "--steps", "3", "--seeds", "2",
             "--out", str(tmp_path / "vis"), tmp=tmp_path)
    _quiet(r.stderr)
    assert "maximising" in r.stderr  # the plain one-line notes stay


def test_tables_keep_full_layer_names_when_piped():
    r = _run("rf", "torchvision:resnet50", "--input", "3x64x64")
    _quiet(r.stderr)
    assert "\x1b" not in r.stdout
    for name in ("layer1.0.conv1", "layer1.0.downsample.0", "layer4.2.conv3"):
        assert re.search(rf"│ {re.escape(name)}\s", r.stdout), name
    assert "…" not in r.stdout


def test_vmap_as_strided_fallback_warning_is_silenced_and_nothing_else():
    """torch warns when vmap falls back to a loop for in-place as_strided_; edgewise's vmap hides exactly that."""

    def inplace(x):
        return x.clone().as_strided_((2,), (1,))

    def other(x):
        warnings.warn("some other warning", UserWarning)
        return x * 2

    torch._C._functorch._set_vmap_fallback_warning_enabled(True)
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            torch.func.vmap(inplace)(torch.randn(3, 4))
        # the warning really is raised here, so the check below means something
        assert any("as_strided_" in str(w.message) for w in seen), [str(w.message) for w in seen]
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            out = sensitivity._vmap(inplace)(torch.randn(3, 4))
            sensitivity._vmap(other)(torch.randn(3))
        assert out.shape[0] == 3
        assert [str(w.message) for w in seen] == ["some other warning"]
    finally:
        torch._C._functorch._set_vmap_fallback_warning_enabled(False)
