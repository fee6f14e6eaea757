"""The timm zoo: ``timm:NAME`` model references, and the family sweep (``benchmarks/timm_sweep.py``).

A fixed sample of small families that trace runs in the default test run (path counts against the autograd
oracle, as in ``tests/test_zoo.py``); the sweep over every family is marked ``slow``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import pytest
import torch

import edgewise
from edgewise import EdgewiseError, models
from edgewise.cli import main

timm = pytest.importorskip("timm")

ROOT = Path(__file__).resolve().parent.parent


def _sweep_module():
    spec = importlib.util.spec_from_file_location("timm_sweep", ROOT / "benchmarks" / "timm_sweep.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module


sweep = _sweep_module()

#: family → its smallest model (the sweep's pick): small families that trace, checked in every test run
SAMPLE = {
    "resnet": "test_resnet",
    "efficientnet": "test_efficientnet",
    "regnet": "regnetx_002",
    "densenet": "densenet121",
    "byobnet": "test_byobnet",
    "vovnet": "ese_vovnet19b_slim_dw",
}


# ----------------------------------------------------------------------------- timm:NAME references

def test_timm_reference_builds_the_architecture():
    net = models.load("timm:resnet10t")
    assert isinstance(net, timm.models.ResNet)
    assert getattr(net, "_edgewise_builder")[:2] == ("timm", "resnet10t")
    with torch.no_grad():
        assert net.eval()(torch.zeros(2, 3, 64, 64)).shape == (2, 1000)
    assert models.describe("timm:resnet10t") == "timm:resnet10t"


def test_timm_reference_accepts_a_pretrained_tag_and_knows_its_input_size():
    assert models.default_input("timm:resnet10t") == (3, 176, 176)  # its pretrained configuration's size
    assert models.default_input("timm:resnet10t.c3_in1k") == (3, 176, 176)
    assert models.default_input("timm:convnext_atto") == (3, 224, 224)
    assert models.default_input("torchvision:resnet18") == (3, 224, 224)
    assert models.default_input("16*conv3") is None
    assert models.load("timm:resnet10t.c3_in1k")._edgewise_builder[:2] == ("timm", "resnet10t.c3_in1k")


def test_torchvision_reference_is_marked_with_its_builder():
    pytest.importorskip("torchvision")
    assert models.load("torchvision:resnet18")._edgewise_builder[:2] == ("torchvision", "resnet18")


def test_unknown_timm_name_suggests_close_matches():
    with pytest.raises(EdgewiseError) as info:
        models.load("timm:resnet10tt")
    msg = str(info.value)
    assert "timm has no model 'resnet10tt'" in msg and "did you mean" in msg and "resnet10t" in msg


def test_unknown_timm_name_without_close_matches_says_how_to_list_them():
    with pytest.raises(EdgewiseError, match=r"timm has no model 'qqqqqqqqqq'; list its \d+ architectures"):
        models.load("timm:qqqqqqqqqq")


def test_missing_timm_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # `import timm` raises ImportError
    for call in (lambda: models.load("timm:resnet10t"), lambda: models.default_input("timm:resnet10t")):
        with pytest.raises(EdgewiseError) as info:
            call()
        assert "timm:resnet10t needs timm" in str(info.value)
        assert "pip install 'edgewise[timm]'" in str(info.value)


def test_timm_reference_in_the_engines_and_the_cli(capsys):
    g = models.as_graph("timm:test_resnet", (3, 32, 32))
    assert g.model_name == "timm:test_resnet" and g[g.output].shape == (1000,)
    assert edgewise.pathways("timm:test_resnet", (3, 32, 32)).model == "timm:test_resnet"
    assert main(["paths", "timm:test_resnet", "--input", "3x32x32", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"] == "timm:test_resnet" and doc["shape"] == [32, 32]
    # without --input: the model's configured size (test_resnet: 3x160x160)
    size = models.default_input("timm:test_resnet")
    assert main(["rf", "timm:test_resnet", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["input_shape"] == list(size)


# ----------------------------------------------------------------------------- the sweep

@pytest.mark.parametrize("family", list(SAMPLE))
def test_sample_family_traces_and_counts_equal_autograd(family):
    assert SAMPLE[family] in timm.list_models(module=family)
    r = sweep.check_model(SAMPLE[family], size=64)
    assert r["status"] == "traced", r.get("error")
    assert r["input"] == [3, 64, 64]
    assert r["rf"]["status"] == "ok", r["rf"]
    assert r["oracle"]["status"] == "match", r["oracle"]


def test_sweep_compare_rules():
    import numpy as np

    exact = np.array([[0, 3], [2 ** 60 + 1, 5]], dtype=object)
    oracle = np.array([[0.0, 3.0], [float(2 ** 60), 5.0]])
    assert sweep.compare(exact, oracle, 0)["equal"]  # beyond 2**53: relative 1e-12
    assert not sweep.compare(exact, oracle + np.array([[0, 0], [0, 1.0]]), 0)["equal"]  # small counts: exact
    assert "unreachable" in sweep.compare(exact, oracle + np.array([[1.0, 0], [0, 0]]), 0)["why"]
    huge = np.array([2 ** 1100, 2 ** 1100 * 3], dtype=object)
    assert sweep.compare(huge, np.array([2.0 ** 200, 3 * 2.0 ** 200]), 900)["equal"]  # oracle scaled by 2**-900


def test_sweep_reasons_group_refusals():
    assert sweep.reason("layer 'permute' (in module 'stem', Foo) of timm:x uses permute, which edgewise "
                        "cannot map to position-to-position connections.") == "permute"
    assert sweep.reason("could not trace timm:x with torch.fx: TraceError: symbolically traced variables cannot "
                        "be used as inputs to control flow. Data-dependent ...").startswith("torch.fx TraceError: "
                                                                                            "symbolically traced")
    assert sweep.reason("timm:x does not run on an input of shape 3x64x64 (batch axis added): RuntimeError: "
                        "bad") == "does not run (RuntimeError)"
    assert sweep.reason("something new about 'layer.3' at 12 places") == "something new about '…' at N places"


def test_sweep_script_writes_json_and_a_table(tmp_path, capsys):
    out, picks = tmp_path / "sweep.json", tmp_path / "picks.json"
    picks.write_text(json.dumps({"timm": timm.__version__, "picks": {"resnet": {"model": "test_resnet"}}}))
    assert sweep.main(["--only", "resnet", "--out", str(out), "--picks", str(picks), "--no-progress",
                       "--per-family"]) == 0
    doc = json.loads(out.read_text())
    assert doc["summary"]["families"] == 1 and doc["summary"]["traced"] == 1
    assert doc["summary"]["oracle_match"] == 1
    (r,) = doc["results"]
    assert r["family"] == "resnet" and r["model"] == "test_resnet" and r["oracle"]["status"] == "match"
    assert set(r["times"]) == {"build", "trace", "receptive_field", "pathways", "oracle", "weighted"}
    assert r["weighted"] == {"status": "ok"} and doc["summary"]["weighted"] == {"ok": 1}
    text = capsys.readouterr().out
    assert "| 1 | 1 (100.0 %) |" in text and "| resnet | test_resnet | 3x64x64 | traced | match |" in text
    assert "Weighted paths (`edgewise.weighted_pathways`, one initialisation) of the traced: 1 computed" in text


def test_sweep_records_a_timeout_and_goes_on(tmp_path, monkeypatch):
    picks = tmp_path / "picks.json"
    picks.write_text(json.dumps({"timm": timm.__version__, "picks": {"resnet": {"model": "test_resnet"},
                                                                     "regnet": {"model": "regnetx_002"}}}))

    def check(name, size=64, report=None):
        report({"model": name, "stage": "trace", "times": {}})
        if name == "test_resnet":
            time.sleep(60)  # a hang in the tracer
        return {"model": name, "stage": "done", "status": "traced", "times": {}}

    monkeypatch.setattr(sweep, "check_model", check)  # the forked worker sees the patched function
    t = time.perf_counter()
    results = sweep.run_sweep(["resnet", "regnet"], timeout_s=2, jobs=1, progress=False, picks_path=picks)
    assert time.perf_counter() - t < 30
    assert results[0]["status"] == "timeout" and results[0]["reason"] == "timeout in trace (> 2 s)"
    assert results[1]["status"] == "traced" and results[1]["family"] == "regnet"


@pytest.mark.slow
def test_sweep_over_every_family_traces_at_least_95_percent(tmp_path):
    # 2-12 min: deselected by default (pyproject's addopts); run with `pytest -m slow tests/test_timm.py`
    picks = tmp_path / "picks.json"  # a copy of the cached picks: the test writes nothing into the checkout
    if sweep.PICKS.exists():
        picks.write_text(sweep.PICKS.read_text())
    results = sweep.run_sweep(sweep.families(), size=64, timeout_s=60, jobs=2, progress=False, picks_path=picks)
    summary = sweep.summarize(results)
    assert summary["traced_pct"] >= 95, sweep.markdown(summary, results, {
        "timm": timm.__version__, "torch": torch.__version__, "commit": "test", "date": "", "input": 64,
        "timeout": 60, "seconds": 0})
