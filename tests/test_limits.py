"""Requests that cannot fit are refused up front, in one line naming what to reduce; the global remedy stays small.

The CLI cases run in a subprocess whose address space is limited to what importing torch takes plus a
few GiB, with a timeout: without the up-front estimates they would run into that limit or the timeout
instead of exiting with a clean one-line error.
"""

from __future__ import annotations

import math
import os
import resource
import subprocess
import sys

import numpy as np
import pytest
import torch

from edgewise import limits
from edgewise.errors import EdgewiseError

GiB = 1 << 30
_MAIN = "import sys; from edgewise.cli import main; sys.exit(main())"


def _cli(args, baseline: int, extra: int, timeout: float):
    limit = baseline + extra

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = {k: v for k, v in os.environ.items() if k != "EDGEWISE_MEMORY"}
    return subprocess.run([sys.executable, "-c", _MAIN, *args], capture_output=True, text=True, timeout=timeout,
                          preexec_fn=cap, env=env)


@pytest.mark.parametrize("args, reduce", [
    # 1×512×512 fits now (the initialisations run one at a time when a pass is large): 2048² cannot
    (["report", "16*conv3", "--input", "1x2048x2048", "--out", "{tmp}/r"], "--inits"),
    (["report", "8*conv3", "--input", "1x32x32", "--inits", "1000000000", "--out", "{tmp}/r"], "--inits"),
    (["sensitivity", "8*conv3", "--input", "1x32x32", "--inits", "1000000000"], "--inits"),
    (["experiment", "border-digits", "--seeds", "1000000000"], "--seeds"),
    (["paths", "999999*conv3", "--input", "1x64"], "repeat counts"),
    (["scaling", "conv3", "--input", "1x10000000"], "input size"),
], ids=["report-2048", "report-inits", "sensitivity-inits", "experiment-seeds", "paths-depth", "scaling-length"])
def test_refused_fast_with_one_line(args, reduce, baseline, tmp_path):
    r = _cli([a.format(tmp=tmp_path) for a in args], baseline, 2 * GiB, timeout=20)
    assert r.returncode == 2, r.stderr[-2000:]
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    line = lines[0].replace("reduce the ", "reduce ")
    assert "error:" in line and "of memory" in line and f"reduce {reduce}" in line
    assert not list(tmp_path.rglob("*.html"))


def test_global_remedy_fits_in_two_and_a_half_gib(baseline):
    r = _cli(["remedies", "4*conv3", "--input", "1x192x192", "--json"], baseline, int(2.5 * GiB), timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    import json

    rows = {row["name"]: row for row in json.loads(r.stdout)["rows"]}
    assert "error" not in rows["global"]
    assert rows["global"]["center_edge_ratio"] < rows["original"]["center_edge_ratio"]


def test_budget_from_environment(monkeypatch):
    monkeypatch.setenv("EDGEWISE_MEMORY", "3G")
    assert limits.budget() == 3 * GiB
    monkeypatch.setenv("EDGEWISE_MEMORY", "512MiB")
    assert limits.budget() == 512 << 20
    monkeypatch.setenv("EDGEWISE_MEMORY", "lots")
    with pytest.raises(EdgewiseError, match="EDGEWISE_MEMORY"):
        limits.budget()
    monkeypatch.delenv("EDGEWISE_MEMORY")
    assert 0 < limits.budget() <= limits.DEFAULT_CAP


def test_library_calls_refuse_before_work(monkeypatch):
    from edgewise.nets import from_spec
    from edgewise.sensitivity import init_sensitivity

    monkeypatch.setenv("EDGEWISE_MEMORY", "1G")
    with pytest.raises(EdgewiseError, match="reduce --inits"):
        init_sensitivity("2*conv3", (1, 16, 16), n_inits=10**9)
    with pytest.raises(EdgewiseError, match="repeat counts"):
        from_spec(f"{10**9}*conv3", (1, 16))
    with pytest.raises(EdgewiseError, match="repeat counts"):
        from_spec("res(conv3, conv3), 100000*res(conv3, conv3)", (1, 16))
    from_spec("4*conv3", (1, 16))  # small nets are untouched
    from edgewise import weighted_pathways

    wide = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 3, padding=1))
    with pytest.raises(EdgewiseError, match="the weighted paths of a 1x2048x2048 input .* reduce the input size"):
        weighted_pathways(wide, (1, 2048, 2048), n_inits=2, init="default")


def test_global_connections_counted_without_the_dense_matrix():
    """The sparse entries of a global layer's connectivity equal its dense matrix (small map), and a large
    map's are built without it (positions² int64 would be 10 GiB here)."""
    from edgewise._axis import nonzeros
    from edgewise.remedies import GlobalConv2d

    cases = [("zeros", (7, 9, 3, 1, 1)), ("reflect", (8, 5, 3, 2, 0)), ("circular", (6, 6, 5, 2, 2))]
    for mode, (h, w, k, s, p) in cases:
        _, (flat,) = GlobalConv2d(2, 3, k, s, p, padding_mode=mode, n_global=4, input_size=(h, w)).edgewise_op(2)
        n_in, n_out = math.prod(flat.in_size), math.prod(flat.out_size)
        m = flat.matrix(n_in, n_out)
        rows, cols, vals = nonzeros(flat, n_in, n_out)
        c, r = np.nonzero(m.T)
        assert (rows == r).all() and (cols == c).all() and (vals == m[r, c]).all()
    _, (flat,) = GlobalConv2d(1, 1, 3, padding=1, n_global=8, input_size=(192, 192)).edgewise_op(2)
    rows, cols, vals = nonzeros(flat, 192 * 192, 192 * 192)
    assert vals.sum() == 192 * 192 * 8 + 190 * 190 * 9 + 4 * 190 * 6 + 4 * 4  # extra + in-image taps
